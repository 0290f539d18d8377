"""Which reader scans a log in a bucket: s3fs registered with DuckDB, or DuckDB's httpfs (issue 15).

Starts moto's S3 server on 127.0.0.1, uploads a hive-partitioned Parquet log (--rows rows over
--days days, time-ordered, as benchmarks/sampler_scale.py writes it) and runs the same query,
one day's rows with the columns the sampler reads, through each reader, --repeat times:

* s3fs: an fsspec file system registered with the connection (what drift uses);
* httpfs: DuckDB's extension, from PyPI's duckdb-extension-httpfs, with the keys in a secret.

httpfs is built for one DuckDB release (duckdb-extension-httpfs 1.5.5 needs duckdb 1.5.5), so run
this in a venv with that pair; without it the httpfs rows say why.

    python -m venv /tmp/httpfs-venv
    /tmp/httpfs-venv/bin/pip install duckdb==1.5.5 duckdb-extension-httpfs==1.5.5 s3fs 'moto[server]' boto3 httpx
    /tmp/httpfs-venv/bin/python benchmarks/s3_log_reader.py [--rows 5000000] [--days 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

START = "2026-09-01 00:00:00+00"


def main() -> None:
    import boto3
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.s3_server import s3_endpoint  # moto's server, as the tests start it

    with s3_endpoint() as (_, endpoint):
        port = int(endpoint.rsplit(":", 1)[1])
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )
        client.create_bucket(Bucket="logs")
        step_us = args.days * 86_400_000_000 // args.rows
        with tempfile.TemporaryDirectory() as tmp:
            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"""
                COPY (SELECT 'in-' || lpad(CAST(i AS VARCHAR), 10, '0') AS input_id,
                             TIMESTAMPTZ '{START}' + to_microseconds(i * {step_us}) AS received_at,
                             CASE i % 3 WHEN 0 THEN 'image' WHEN 1 THEN 'document' ELSE 'payload' END AS kind,
                             'source-' || CAST(hash(i) % 8 AS VARCHAR) AS source,
                             'files/' || CAST(i AS VARCHAR) || '.bin' AS uri,
                             strftime(TIMESTAMPTZ '{START}' + to_microseconds(i * {step_us}), '%Y-%m-%d') AS dt
                      FROM range({args.rows}) t(i))
                TO '{tmp}/log' (FORMAT parquet, PARTITION_BY (dt), ROW_GROUP_SIZE 122880)""")
            files = sorted(Path(tmp, "log").rglob("*.parquet"))
            for path in files:
                client.upload_file(str(path), "logs", f"inputs/{path.relative_to(Path(tmp, 'log')).as_posix()}")
        last = f"dt=2026-09-{args.days:02d}" if args.days <= 30 else None
        query = (
            "SELECT count(*), count(DISTINCT source) FROM (SELECT input_id, received_at, kind, source, uri "
            "FROM read_parquet('s3://logs/inputs/dt=*/*.parquet', hive_partitioning = true) "
            "WHERE received_at >= TIMESTAMPTZ '{day} 00:00:00+00' AND received_at < TIMESTAMPTZ '{day} 00:00:00+00' + INTERVAL 1 DAY "
            "AND dt BETWEEN CAST('{day}' AS DATE) - 1 AND CAST('{day}' AS DATE) + 1)"
        ).format(day=last.split("=")[1])

        def s3fs_connection():
            import s3fs

            store = s3fs.S3FileSystem(
                key="k",
                secret="s",
                client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
                config_kwargs={"s3": {"addressing_style": "path"}},
                skip_instance_cache=True,
            )
            con = duckdb.connect()
            con.register_filesystem(store)
            return con

        def httpfs_connection():
            con = duckdb.connect()
            try:
                import duckdb_extension_httpfs

                binary = (
                    Path(duckdb_extension_httpfs.__file__).parent
                    / "extensions"
                    / f"v{duckdb.__version__}"
                    / "httpfs.duckdb_extension"
                )
                con.execute(f"LOAD '{binary}'")
            except Exception as exc:  # noqa: BLE001 - the benchmark reports why the row is missing
                raise RuntimeError(
                    f"httpfs not loadable with duckdb {duckdb.__version__}: {str(exc).splitlines()[0][:120]}"
                ) from None
            con.execute(
                f"CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's', REGION 'us-east-1', ENDPOINT '127.0.0.1:{port}', URL_STYLE 'path', USE_SSL false)"
            )
            return con

        results: dict[str, list[float] | str] = {"s3fs (fsspec, registered)": [], "httpfs": []}
        counts = {}
        for _ in range(args.repeat):
            for name, make in (("s3fs (fsspec, registered)", s3fs_connection), ("httpfs", httpfs_connection)):
                if isinstance(results[name], str):
                    continue
                try:
                    con = make()
                    started = time.perf_counter()
                    counts[name] = con.execute(query).fetchone()
                    results[name].append(time.perf_counter() - started)
                except RuntimeError as exc:
                    results[name] = str(exc)
    print(
        f"{args.rows:,} rows over {args.days} days in {len(files)} files on moto's S3 (127.0.0.1); one day's rows "
        f"({next(iter(counts.values()))[0]:,}); duckdb {duckdb.__version__}; median of {args.repeat}\n"
    )
    print("| reader | seconds (runs) | note |")
    print("|---|---:|---|")
    for name, runs in results.items():
        if isinstance(runs, str):
            print(f"| {name} | - | {runs} |")
        else:
            print(
                f"| {name} | {statistics.median(runs):.2f} ({', '.join(f'{r:.2f}' for r in runs)}) | rows {counts[name][0]:,} |"
            )


if __name__ == "__main__":
    main()
