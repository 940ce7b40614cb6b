"""osquery's SQL functions, against independent computations."""

from __future__ import annotations

import base64
import hashlib
import math

import pytest


def one(conn, sql, *params):
    return next(iter(conn.query(sql, params)[0].values()))


def test_regex(conn):
    assert one(conn, "SELECT regex_match('user=alice id=7', 'id=([0-9]+)', 1)") == "7"
    assert one(conn, "SELECT regex_match('abc', 'z', 0)") is None
    assert one(conn, "SELECT regex_split('a1b22c', '[0-9]+', 2)") == "c"


def test_split_and_concat(conn):
    assert one(conn, "SELECT split('a,b;;c', ',;', 2)") == "c"
    assert one(conn, "SELECT split('a,b', ',', 5)") is None
    assert one(conn, "SELECT concat('a', 1, NULL, 'b')") == "a1b"
    assert one(conn, "SELECT concat_ws('-', 'a', 'b', 'c')") == "a-b-c"


def test_network_functions(conn):
    assert one(conn, "SELECT inet_aton('10.0.0.1')") == 10 * 2**24 + 1
    assert one(conn, "SELECT in_cidr_block('192.168.0.0/16', '192.168.3.4')") == 1
    assert one(conn, "SELECT in_cidr_block('192.168.0.0/16', '10.0.0.1')") == 0
    assert one(conn, "SELECT in_cidr_block('fe80::/10', 'fe80::1')") == 1
    # The Community ID specification's own TCP example.
    assert one(conn, "SELECT community_id_v1('1.2.3.4', '5.6.7.8', 1122, 3344, 6)") == "1:wCb3OG7yAFWelaUydu0D+125CLM="
    assert one(conn, "SELECT community_id_v1('5.6.7.8', '1.2.3.4', 3344, 1122, 6)") == "1:wCb3OG7yAFWelaUydu0D+125CLM="


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("1.0", "1.0", 0), ("1.2", "1.10", -1), ("1:1.0", "2.0", 1), ("1.0~rc1", "1.0", -1), ("2.0-1", "2.0-2", -1)],
)
def test_version_compare(conn, a, b, expected):
    assert one(conn, "SELECT version_compare(?, ?)", a, b) == expected


def test_hashes_and_base64(conn):
    assert one(conn, "SELECT md5('abc')") == hashlib.md5(b"abc").hexdigest()
    assert one(conn, "SELECT sha1('abc')") == hashlib.sha1(b"abc").hexdigest()
    assert one(conn, "SELECT sha256('abc')") == hashlib.sha256(b"abc").hexdigest()
    assert one(conn, "SELECT to_base64('hello')") == base64.b64encode(b"hello").decode()
    assert one(conn, "SELECT from_base64('aGVsbG8=')") == "hello"
    assert one(conn, "SELECT conditional_to_base64('plain')") == "plain"
    assert one(conn, "SELECT conditional_to_base64(?)", "tab\there") == base64.b64encode(b"tab\there").decode()


def test_math(conn):
    assert one(conn, "SELECT log(?)", math.e) == pytest.approx(1.0)
    assert one(conn, "SELECT log10(1000)") == pytest.approx(3.0)
    assert one(conn, "SELECT sqrt(16)") == 4.0
    assert one(conn, "SELECT ceil(1.2)") == 2 and one(conn, "SELECT floor(-1.2)") == -2
    assert one(conn, "SELECT power(2, 10)") == 1024.0
    assert one(conn, "SELECT pi()") == pytest.approx(math.pi)
