"""Configuration against real servers: TLS, ACLs, an evicting Redis.

Each test starts its own redis-server configured for the case, and real worker
processes pointed at it.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from django.test import override_settings

from jobs import QueueUnavailable
from tests import tasks
from tests.servers import free_port, settings_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_evicting_redis_is_warned_about_or_refused_in_strict_mode(
    own_redis, worker_process
):
    server = own_redis("--maxmemory-policy", "allkeys-lru")
    warned = worker_process("--burst", REDIS_URL=server.url)
    assert warned.wait(20) == 0
    assert "maxmemory-policy is 'allkeys-lru'" in warned.output()
    strict = worker_process(
        "--burst",
        REDIS_URL=server.url,
        JOBS_TEST_OPTIONS=json.dumps({"STRICT_REDIS": True}),
    )
    assert strict.wait(20) == 1
    assert "Set maxmemory-policy noeviction" in strict.output()


def _certs(tmp_path, host: str) -> dict[str, str]:
    """A CA and a server certificate for `host`, made with openssl.

    Python 3.13 verifies strictly (X509_STRICT): the CA needs key usage and the
    server certificate key identifiers.
    """

    def openssl(command: str) -> None:
        subprocess.run(
            ["openssl", *command.split()], cwd=tmp_path, check=True, capture_output=True
        )

    openssl(
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=jobs-test-ca -addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign,cRLSign"
    )
    openssl(
        f"req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN={host}"
    )
    (tmp_path / "ext.cnf").write_text(
        f"subjectAltName=DNS:{host}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile ext.cnf"
    )
    return {
        "ca": str(tmp_path / "ca.pem"),
        "server": str(tmp_path / "server.pem"),
        "key": str(tmp_path / "server.key"),
    }


@pytest.fixture
def tls_redis(tmp_path):
    """A redis-server that speaks only TLS, with a certificate for `localhost`."""
    import redis

    certs = _certs(tmp_path, "localhost")
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            certs["server"],
            "--tls-key-file",
            certs["key"],
            "--tls-ca-cert-file",
            certs["ca"],
            "--tls-auth-clients",
            "no",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(
        host="localhost", port=port, ssl=True, ssl_ca_certs=certs["ca"]
    )
    wait_until(lambda: _pings(client), timeout=10, what="the TLS redis-server")
    yield port, certs
    proc.kill()
    proc.wait()


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_tls_checks_the_certificate_and_the_host_name(tls_redis, worker_process):
    port, certs = tls_redis
    good = f"rediss://localhost:{port}/0"
    ca = {"ssl_ca_certs": certs["ca"]}
    with override_settings(**tls_settings(good, ca)):
        result = tasks.add.enqueue(20, 22)
        worker = worker_process(
            "--burst",
            REDIS_URL=good,
            JOBS_TEST_OPTIONS=json.dumps({"REDIS_OPTIONS": ca}),
        )
        assert worker.wait(30) == 0, worker.output()
        assert result.get(timeout=5) == 42
    wrong_host = f"rediss://127.0.0.1:{port}/0"  # the certificate names localhost
    with override_settings(**tls_settings(wrong_host, ca)):
        with pytest.raises(QueueUnavailable, match=r"(?i)hostname|match"):
            tasks.add.enqueue(1, 1)
    with override_settings(**tls_settings(good, {})):  # no CA given: untrusted
        with pytest.raises(QueueUnavailable, match=r"(?i)certificate"):
            tasks.add.enqueue(1, 1)


def tls_settings(url: str, redis_options: dict) -> dict:
    settings = settings_for(url)
    settings["TASKS"]["default"]["OPTIONS"]["REDIS_OPTIONS"] = redis_options
    return settings


def test_acl_user_and_password_work_and_are_never_logged(own_redis, worker_process):
    server = own_redis()
    admin = server.client()
    admin.execute_command(
        "ACL", "SETUSER", "jobs", "on", ">s3cret-pw", "~*", "&*", "+@all"
    )
    url = f"redis://jobs:s3cret-pw@127.0.0.1:{server.port}/0"
    admin.execute_command("ACL", "SETUSER", "default", "off")
    with override_settings(**settings_for(url)):
        result = tasks.add.enqueue(1, 2)
        worker = worker_process("--burst", REDIS_URL=url)
        assert worker.wait(30) == 0
        assert result.get(timeout=5) == 3
        assert "s3cret-pw" not in worker.output()
        assert "jobs:***@" in worker.output()
    bad = f"redis://jobs:wrong-pw@127.0.0.1:{server.port}/0"
    with override_settings(**settings_for(bad)):
        with pytest.raises(QueueUnavailable) as excinfo:
            tasks.add.enqueue(1, 2)
        assert "wrong-pw" not in str(excinfo.value)
        assert "jobs:***@" in str(excinfo.value)
