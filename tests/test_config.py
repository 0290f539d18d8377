"""Job files: clear errors that name the file and the key; paths relative to the job file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from drift.config import load_job
from drift.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
[job]
name = "shop"

[inputs]
log = "logs/*.parquet"
roots = ["data"]

[baseline]
name = "march"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_job(write(tmp_path, text))
    return str(caught.value)


def test_minimal_job_gets_defaults_and_paths_relative_to_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    config = load_job(write(tmp_path, MINIMAL))
    assert config.inputs.log == str(tmp_path / "logs/*.parquet")
    assert config.inputs.roots == [str(tmp_path / "data")]
    assert config.baseline_dir == tmp_path / "baselines" / "shop" / "march"
    assert config.store.database == tmp_path / "drift.duckdb"
    assert config.job.window_length.days == 1
    assert config.image.pretrained == "untrained"
    assert config.baseline_sample == 5 * config.sampling.max_per_segment  # a baseline sized for power


def test_the_baseline_sample_is_set_apart_from_the_nights(tmp_path):
    config = load_job(write(tmp_path, MINIMAL + "max_per_segment = 4000\n[sampling]\nmax_per_segment = 300\n"))
    assert (config.baseline_sample, config.sampling.max_per_segment) == (4000, 300)
    assert "[baseline] max_per_segment: Input should be greater than 0" in error_of(tmp_path, MINIMAL + "max_per_segment = -1\n")


def test_unknown_key_is_an_error_naming_file_section_and_key(tmp_path):
    message = error_of(tmp_path, MINIMAL + "\n[sampling]\nmax_per_segmnet = 5\n")
    assert (
        message
        == f"{tmp_path / 'job.toml'}: [sampling] max_per_segmnet: unknown key (check the spelling; see jobs/nightly.example.toml)"
    )


def test_missing_required_section_and_key(tmp_path):
    message = error_of(tmp_path, '[job]\nname = "x"\n[inputs]\nlog = "a.parquet"\n')
    assert "[inputs] roots: required key is missing" in message
    assert f"{tmp_path / 'job.toml'}: [baseline]: required section is missing" in message


@pytest.mark.parametrize(
    "patch, expected",
    [
        (("[sampling]\nmax_per_segment = 0\n"), "[sampling] max_per_segment: Input should be greater than 0"),
        (('[sampling]\nmax_per_segment = "many"\n'), "[sampling] max_per_segment: Input should be a valid integer"),
        (('[policy]\npage_at = "loud"\n'), "[policy] page_at: Input should be 'none', 'info', 'warning' or 'critical'"),
        (("[policy.effect]\nembeddings = 0.1\n"), "unknown check family ['embeddings']"),
        (('[[alerts.sinks]]\ntype = "pager"\n'), "[alerts.sinks[0]]: type: Input tag 'pager'"),
        (
            ('[[alerts.sinks]]\nname = "hook"\ntype = "webhook"\nurl = "ftp://x"\n'),
            "[alerts.sinks[0]] url: String should match pattern",
        ),
        (('[[alerts.sinks]]\ntype = "stdout"\n'), "[alerts.sinks[0]] name: required key is missing"),
        (
            ('[[alerts.sinks]]\nname = "x"\ntype = "stdout"\n[[alerts.sinks]]\nname = "x"\ntype = "stdout"\n'),
            "two sinks are named 'x'",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path, patch, expected):
    assert expected in error_of(tmp_path, MINIMAL + patch)


def test_bad_schedule_and_window(tmp_path):
    text = MINIMAL.replace('name = "shop"', 'name = "shop"\nschedule = "every night"\nwindow = "1w"')
    message = error_of(tmp_path, text)
    assert "[job] schedule: Value error, expected a 5-field cron expression" in message
    assert "[job] window: Value error, expected a duration such as '1d' or '12h', got '1w'" in message


@pytest.mark.parametrize("schedule", ["61 3 * * *", "0 25 * * *", "0 3 32 * *"])
def test_a_cron_line_the_scheduler_would_refuse_is_refused_by_validate(tmp_path, schedule):
    message = error_of(tmp_path, MINIMAL.replace('name = "shop"', f'name = "shop"\nschedule = "{schedule}"'))
    assert "[job] schedule: Value error, not a valid cron expression" in message


def test_an_unknown_time_zone_is_refused(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace('name = "shop"', 'name = "shop"\ntimezone = "Mars/Olympus_Mons"'))
    assert "[job] timezone: Value error, unknown time zone 'Mars/Olympus_Mons'" in message
    assert load_job(
        write(
            tmp_path, MINIMAL.replace('name = "shop"', 'name = "shop"\ntimezone = "Europe/Paris"\nschedule = "30 2 * * mon-fri"')
        )
    )


def test_unreadable_job_files(tmp_path):
    with pytest.raises(ConfigError, match="job file not found"):
        load_job(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_job(write(tmp_path, "[job\nname="))
    with pytest.raises(ConfigError, match="is a folder"):
        load_job(tmp_path)


def test_shipped_job_files_are_valid_and_name_the_secrets_their_sinks_read(monkeypatch, tmp_path):
    from drift.alerts.sinks import build_sink

    demo = load_job(ROOT / "jobs" / "demo.toml")
    assert demo.baseline.dir == str((ROOT / "baselines").resolve())
    nightly = load_job(ROOT / "jobs" / "nightly.example.toml")
    variables = sorted({v for s in nightly.alerts.sinks for k, v in s.model_dump().items() if k.endswith("_env") and v})
    assert "DRIFT_WEBHOOK_SECRET" in variables and "DRIFT_SLACK_WEBHOOK_URL" in variables
    # Each sink reads exactly the variables the example names: with them set every sink builds,
    # and without the first one the error names it.
    for name in variables:
        monkeypatch.setenv(name, "https://hooks.example.com/secret" if "URL" in name else "s")
    assert [type(build_sink(s)).__name__ for s in nightly.alerts.sinks]
    monkeypatch.delenv(variables[0])
    with pytest.raises(ConfigError, match=variables[0]):
        [build_sink(s) for s in nightly.alerts.sinks]


def test_repository_demo_job_matches_the_packaged_one():
    """jobs/demo.toml is the demo's job laid out for the repository: only paths may differ."""
    packaged = tomllib.loads((ROOT / "drift" / "demo" / "job.toml").read_text())
    shipped = tomllib.loads((ROOT / "jobs" / "demo.toml").read_text())
    paths = {("inputs", "log"), ("inputs", "roots"), ("baseline", "dir"), ("store", "database"), ("report", "dir")}
    for section, values in packaged.items():
        if section == "alerts":
            assert [s["type"] for s in shipped["alerts"]["sinks"]] == [s["type"] for s in values["sinks"]]
            continue
        for key, value in values.items():
            if (section, key) not in paths:
                assert shipped[section][key] == value, (section, key)


def test_object_storage_and_engine_settings_are_checked(tmp_path):
    bucket = MINIMAL.replace('roots = ["data"]', 'roots = ["data", "s3://uploads/receipts/"]').replace(
        'log = "logs/*.parquet"', 'log = "s3://logs/inputs/dt=*/*.parquet"'
    )
    config = load_job(write(tmp_path, bucket + '\n[engine]\nkind = "ray"\n'))
    assert config.inputs.log == "s3://logs/inputs/dt=*/*.parquet"
    assert config.inputs.roots == [str(tmp_path / "data"), "s3://uploads/receipts/"]
    assert config.engine.kind == "ray" and config.engine.actors is None
    remote = load_job(write(tmp_path, MINIMAL.replace('name = "march"', 'name = "march"\ndir = "s3://drift/baselines"')))
    assert remote.baseline_uri == "s3://drift/baselines/shop/march"
    assert "[inputs] memory_limit: Value error, expected a size such as '4GB'" in error_of(
        tmp_path, MINIMAL.replace('roots = ["data"]', 'roots = ["data"]\nmemory_limit = "lots"')
    )
    assert "only local paths and s3:// are supported" in error_of(
        tmp_path, MINIMAL.replace('roots = ["data"]', 'roots = ["gs://bucket/x"]')
    )
    assert "[inputs.s3] endpoint: Value error, expected http(s)://host[:port]" in error_of(
        tmp_path, MINIMAL + '\n[inputs.s3]\nendpoint = "minio:9000"\n'
    )
    assert "[engine] kind: Input should be 'local' or 'ray'" in error_of(tmp_path, MINIMAL + '\n[engine]\nkind = "spark"\n')
