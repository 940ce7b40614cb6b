"""`streamq run`: continuous queries, their state and outbox, the control socket and the fleet."""
