"""Cloud metadata tables: nothing sent off that cloud; rows from a local metadata service the test runs."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from streamq.host import cloudmeta
from streamq.tables import cloud

AZURE = {
    "compute": {
        "location": "westeurope",
        "name": "web-01",
        "osType": "Linux",
        "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
        "vmSize": "Standard_D2s_v3",
        "platformFaultDomain": "0",
        "resourceGroupName": "prod",
        "tagsList": [{"name": "env", "value": "prod"}, {"name": "team", "value": "sre"}],
    }
}
YCLOUD = {
    "id": "fhm1v2kq3h4",
    "name": "bastion",
    "hostname": "bastion.ru-central1.internal",
    "zone": "projects/b1gfolder/zones/ru-central1-a",
    "attributes": {"ssh-keys": "ubuntu:ssh-ed25519 AAAA test", "serial-port-enable": "0"},
    "vendor": {"cloudId": "b1gcloud", "folderId": "b1gfolder"},
}


class Metadata(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, dict]] = []

    def do_GET(self):
        Metadata.seen.append((self.path, dict(self.headers)))
        if self.path == cloudmeta.AZURE_API and self.headers.get("Metadata") == "true":
            body = json.dumps(AZURE).encode()
        elif self.path == cloudmeta.YCLOUD_API and self.headers.get("Metadata-Flavor") == "Google":
            body = json.dumps(YCLOUD).encode()
        else:
            self.send_error(400)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    thread = threading.Thread(target=server.serve_forever, name="test-metadata", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_off_cloud_nothing_is_sent(conn):
    if cloudmeta.on_azure() or cloudmeta.on_yandex_cloud():
        pytest.skip("this machine is on Azure or Yandex Cloud")
    start = time.monotonic()
    for name in ("azure_instance_metadata", "azure_instance_tags", "ycloud_instance_metadata"):
        assert conn.query(f"SELECT * FROM {name}") == []
    assert time.monotonic() - start < 1  # no request, so no timeout was waited for


def test_azure_from_a_metadata_service(conn, endpoint, monkeypatch):
    monkeypatch.setattr(cloud, "AZURE_ENDPOINT", endpoint)
    (row,) = conn.query("SELECT * FROM azure_instance_metadata")
    assert (row["vm_id"], row["vm_size"], row["location"], row["os_type"], row["platform_fault_domain"]) == (
        "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
        "Standard_D2s_v3",
        "westeurope",
        "Linux",
        "0",
    )
    assert row["sku"] is None
    tags = conn.query("SELECT key, value FROM azure_instance_tags")
    assert tags == [{"key": "env", "value": "prod"}, {"key": "team", "value": "sre"}]


def test_ycloud_from_a_named_endpoint(conn, endpoint):
    (row,) = conn.query("SELECT * FROM ycloud_instance_metadata WHERE metadata_endpoint = ?", (endpoint,))
    assert row == {
        "instance_id": "fhm1v2kq3h4",
        "folder_id": "b1gfolder",
        "cloud_id": "b1gcloud",
        "name": "bastion",
        "description": None,
        "hostname": "bastion.ru-central1.internal",
        "zone": "ru-central1-a",
        "ssh_public_key": "ubuntu:ssh-ed25519 AAAA test",
        "serial_port_enabled": "0",
        "metadata_endpoint": endpoint,
    }
