"""The Celery harness's services (tests/celery_cluster.py): where PostgreSQL or Redis is not listening, private
instances are started from Debian's packages instead of skipping. CLONE_TEST_PRIVATE_SERVICES=1 forces that
path here, beside whatever listens on 5432/6379."""

from __future__ import annotations

import psycopg2
import redis as redis_client

from tests.celery_cluster import listening, postgres, redis


def test_private_postgres_and_redis_start_serve_and_stop(tmp_path, monkeypatch):
    monkeypatch.setenv("CLONE_TEST_PRIVATE_SERVICES", "1")
    with postgres(tmp_path / "pg") as sql_url, redis(tmp_path) as broker_url:
        pg_port = int(sql_url.rsplit(":", 1)[1].split("/")[0])
        redis_port = int(broker_url.rsplit(":", 1)[1].split("/")[0])
        assert pg_port != 5432 and redis_port != 6379
        database = sql_url.rsplit("/", 1)[1]
        with psycopg2.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname=database) as conn:
            assert conn.cursor().execute("SELECT 1") is None
        client = redis_client.Redis.from_url(broker_url)
        assert client.ping() and client.get("clone-test-claim") == b"1"
    assert not listening(pg_port) and not listening(redis_port)


def test_shared_services_give_a_private_database_and_db_number(tmp_path, monkeypatch):
    monkeypatch.delenv("CLONE_TEST_PRIVATE_SERVICES", raising=False)
    with postgres(tmp_path / "pg") as first, postgres(tmp_path / "pg2") as second, \
            redis(tmp_path) as broker_a, redis(tmp_path) as broker_b:
        assert first != second and broker_a != broker_b
