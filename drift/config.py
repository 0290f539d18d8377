"""The job file: TOML in, a validated `JobConfig` out.

Every problem is reported as `<file>: [section] key: what is wrong`, and unknown keys are errors,
so a typo never silently falls back to a default. Relative paths resolve against the job file's
folder, so a job behaves the same from any working directory (cron, notebooks, CI).
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .locations import SCHEME, baseline_cache, is_local_url, is_remote, scheme_of
from .record import Family, Severity

_DURATION = re.compile(r"^\s*(\d+)\s*([hd])\s*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobSection(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="used in folder names and alert keys")
    schedule: str = "0 3 * * *"
    window: str = "1d"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        # The scheduler's own parser: what it accepts runs, what it refuses is refused here.
        from apscheduler.triggers.cron import CronTrigger

        if len(value.split()) != 5:
            raise ValueError(f"expected a 5-field cron expression like '0 3 * * *', got {value!r}")
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a valid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def window_length(self) -> timedelta:
        return parse_duration(self.window)


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"expected a duration such as '1d' or '12h', got {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(days=amount) if unit == "d" else timedelta(hours=amount)


class S3Section(_Section):
    """Where s3:// objects are read, for stores other than AWS. Credentials never come from here:
    they come from the standard AWS chain (environment, profile, instance role)."""

    endpoint: str | None = Field(
        default=None, description="http(s)://host:port of an S3-compatible store (MinIO, R2, GCS interop)"
    )
    region: str | None = None
    url_style: Literal["virtual", "path"] = Field(
        default="virtual", description="path: http://host/bucket/key (MinIO, most local stores)"
    )
    timeout_s: float = Field(default=30.0, gt=0, description="per request: connecting, and each read")
    profile: str | None = Field(default=None, description="a named profile of the AWS config files")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+/?$", value):
            raise ValueError(f"expected http(s)://host[:port], got {value!r}")
        return value


def _storage_location(value: str, what: str) -> str:
    if scheme_of(value) is not None and not (is_remote(value) or is_local_url(value)):
        raise ValueError(f"{what} {value!r}: only local paths and s3:// are supported")
    if is_remote(value) and len(value) <= len(SCHEME):
        raise ValueError(f"{what} {value!r}: name a bucket, as s3://bucket/prefix/")
    return value


class InputsSection(_Section):
    log: str = Field(description="glob of Parquet, JSON Lines or CSV files, on disk or under s3://")
    roots: list[str] = Field(min_length=1, description="folders, or s3:// bucket prefixes, the monitor may read inputs from")
    date_partition: str = Field(
        default="dt", description="hive partition column holding the date (dt=2026-11-02/), used to skip other days"
    )
    memory_limit: str | None = Field(
        default=None, description="DuckDB's memory limit while sampling, such as '4GB' (default: 80% of RAM)"
    )
    s3: S3Section = S3Section()

    @field_validator("log")
    @classmethod
    def _log(cls, value: str) -> str:
        return _storage_location(value, "log")

    @field_validator("roots")
    @classmethod
    def _roots(cls, value: list[str]) -> list[str]:
        return [_storage_location(root, "root") for root in value]

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", value, re.IGNORECASE):
            raise ValueError(f"expected a size such as '4GB' or '512MiB', got {value!r}")
        return value


class SamplingSection(_Section):
    max_per_segment: int = Field(default=500, gt=0)
    seed: int = 0


# Where an encoder runs (drift.features.embed.device): auto, cpu, cuda, cuda:N
_DEVICE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")


def _device(value: str) -> str:
    if not _DEVICE.match(value):
        raise ValueError(f"expected auto, cpu, cuda or cuda:N (a GPU's index), got {value!r}")
    return value


Device = Annotated[str, AfterValidator(_device)]


BASELINE_SAMPLE_FACTOR = 5  # a baseline samples this many times a night's sample per segment, by default


class BaselineSection(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    dir: str = Field(default="baselines", description="a folder, or an s3:// prefix")
    # The baseline's own sample per segment: a week of traffic cut to one night's size throws away
    # most of the power of the exact tests. Default: BASELINE_SAMPLE_FACTOR x [sampling] max_per_segment.
    max_per_segment: int | None = Field(default=None, gt=0)

    @field_validator("dir")
    @classmethod
    def _dir(cls, value: str) -> str:
        return _storage_location(value, "dir")


class LimitsSection(_Section):
    """Limits for the worker processes that open untrusted bytes."""

    workers: int = Field(default=2, ge=1, le=64)
    # Address space, not resident memory: a worker maps ~700 MB of libraries before it opens a file.
    memory_mb: int = Field(default=2048, ge=1024)
    tasks_per_worker: int = Field(
        default=500, ge=1, description="recycle workers to bound leaks (a task: one file, or a batch of payloads)"
    )


class ImageSection(_Section):
    model: str = "ViT-B-32"
    architecture: Path | None = Field(default=None, description="open_clip architecture JSON for a custom model")
    pretrained: str = Field(default="untrained", description="open_clip tag, checkpoint path, or 'untrained'")
    seed: int = Field(default=0, description="initialises the untrained encoder")
    quantize: Literal["none", "int8"] = Field(
        default="none",
        description="int8 with backend torch: dynamic int8 Linear layers, one item per pass (about 1.1x); with backend "
        "onnxruntime: static int8, calibrated on the baseline's own items (about 2.5x)",
    )
    backend: Literal["torch", "onnxruntime"] = Field(
        default="torch",
        description="torch: PyTorch eager; onnxruntime: the tower exported once to ONNX and run by ONNX Runtime (pip install -e '.[onnx]')",
    )
    batch_size: int = Field(default=32, ge=1, le=1024, description="crops per forward pass; on a GPU, 128 to 512 keep it busy")
    device: Device = Field(
        default="auto",
        description="auto (a GPU when torch sees one, else the CPU), cpu, cuda or cuda:N; backend onnxruntime and "
        "quantize int8 run on the CPU",
    )
    precision: Literal["fp32", "fp16", "bf16"] = Field(default="fp32", description="fp16 and bf16 on a GPU only")

    threads: int | None = Field(default=None, ge=1, description="torch (or ONNX Runtime intra-op) threads; default: all cores")
    max_bytes: int = Field(default=25_000_000, gt=0)
    max_pixels: int = Field(default=50_000_000, gt=0)
    timeout_s: float = Field(default=15.0, gt=0)


class DocumentSection(_Section):
    text_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="sentence encoder for the text: 'all-MiniLM-L6-v2' (bundled), a saved sentence-transformers folder, or 'none'",
    )
    text_chars: int = Field(default=2000, ge=100, le=100_000, description="characters of text embedded per document")
    page_embedding: bool = Field(default=True, description="embed the rendered first page with the [image] encoder")
    text_device: Device = Field(default="auto", description="the text encoder's device: auto, cpu, cuda or cuda:N")

    batch_size: int = Field(default=32, ge=1, le=1024)
    max_bytes: int = Field(default=50_000_000, gt=0)
    max_pages: int = Field(default=500, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)


class PayloadSection(_Section):
    max_bytes: int = Field(default=10_000_000, gt=0)
    max_depth: int = Field(default=64, gt=0)
    max_array: int = Field(default=100_000, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)


class PolicySection(_Section):
    """How findings become a verdict and a severity (see drift.verdict.policy)."""

    page_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="share of nights a job may page with nothing changed, split across its segments and paging check families",
    )
    fdr: float = Field(
        default=0.01, gt=0, lt=0.5, description="Benjamini-Hochberg level per segment for checks that cannot page (info)"
    )
    min_samples: int = Field(default=30, ge=2, description="below this, a check says 'not enough data'")
    page_at: Severity = Severity.WARNING
    effect: dict[str, float] = Field(default_factory=dict, description="per check family")
    severity: dict[str, Severity] = Field(default_factory=dict, description="per check family")

    @field_validator("effect", "severity")
    @classmethod
    def _families(cls, value: dict) -> dict:
        # effect keys may name a method too: "embedding.classifier"
        known = sorted(family.value for family in Family)
        unknown = sorted(k for k in value if k.split(".")[0] not in known)
        if unknown:
            raise ValueError(f"unknown check family {unknown}; known: {known}")
        return value


class StoreSection(_Section):
    database: Path = Path("drift.duckdb")


_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(value: str | int) -> int:
    """Bytes from "20GB", "500 MiB" or a plain number of bytes."""
    import re

    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size; write it as 500MB, 20GB or 1.5TiB")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


class CacheSection(_Section):
    """The feature cache: each item's features under the sha256 of its bytes and the identity of
    what made them, so reruns, backfills and baselines over analysed nights do not redo the work."""

    enabled: bool = True
    dir: str | None = Field(
        default=None, description="a folder, or an s3:// prefix; default: feature-cache/ in the store's folder"
    )
    max_size: str = Field(default="20GB", description="least recently used parts are evicted past this size")

    @field_validator("max_size")
    @classmethod
    def _a_size(cls, value: str) -> str:
        if parse_size(value) <= 0:
            raise ValueError("must be more than 0 bytes; set enabled = false to turn the cache off")
        return value

    @property
    def max_bytes(self) -> int:
        return parse_size(self.max_size)


class ReportSection(_Section):
    dir: Path = Path("reports")
    # where `dir` is served (https://drift.example.com/reports): alerts link there instead of to the file
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")


class EngineSection(_Section):
    """Where inputs are opened and featurized: worker processes here, or a Ray cluster."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(
        default=None,
        description="the Ray cluster: 'auto', ray://host:10001, or 'local' to start one here; default: RAY_ADDRESS, else 'local'",
    )
    actors: int | None = Field(
        default=None, ge=1, description="featurizing actors; default: as many as fit in the cluster's CPUs less one (at least 1)"
    )
    cpus_per_actor: int = Field(
        default=1, ge=1, le=256, description="CPUs each actor reserves; its torch threads, unless [image] threads says otherwise"
    )
    batch_size: int = Field(default=256, ge=1, le=100_000, description="sampled rows per actor call")
    gpus_per_actor: float = Field(
        default=0, ge=0, le=16, description="GPUs each actor reserves (a share such as 0.5 puts two actors on one GPU)"
    )

    @field_validator("kind")
    @classmethod
    def _ray_installed(cls, value: str) -> str:
        import importlib.util

        if value == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError("Ray is not installed; it is an extra: pip install -e '.[ray]'")
        return value


class ExportSection(_Section):
    # a local Evidently workspace folder: every run's descriptor report is added to it, one
    # project per job (needs the extra: pip install -e '.[evidently]')
    evidently_workspace: Path | None = None

    @field_validator("evidently_workspace")
    @classmethod
    def _evidently_installed(cls, value: Path | None) -> Path | None:
        import importlib.util

        if value is not None and importlib.util.find_spec("evidently") is None:
            raise ValueError("Evidently is not installed; it is an extra: pip install -e '.[evidently]'")
        return value


class _Sink(_Section):
    # Messages waiting for a sink are kept under its name: reordering or adding sinks never
    # strands or misroutes them, and renaming one is a new sink (its pending messages stay listed).
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="required and unique within the job")
    min_severity: Severity = Severity.WARNING


class StdoutSink(_Sink):
    type: Literal["stdout"]


class FileSink(_Sink):
    type: Literal["file"]
    path: Path


class WebhookSink(_Sink):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = Field(default=None, description="environment variable holding the HMAC key")
    timeout_s: float = Field(default=10.0, gt=0)


class SlackSink(_Sink):
    type: Literal["slack"]
    # An incoming-webhook URL is itself the secret, so only the variable's name is in the file.
    url_env: str = Field(description="environment variable holding the Slack incoming-webhook URL")
    timeout_s: float = Field(default=10.0, gt=0)


class PagerDutySink(_Sink):
    type: Literal["pagerduty"]
    routing_key_env: str = Field(description="environment variable holding the Events API v2 routing key")
    url: str = Field(default="https://events.pagerduty.com/v2/enqueue", pattern=r"^https?://")
    timeout_s: float = Field(default=10.0, gt=0)


class AlertmanagerSink(_Sink):
    type: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://\S+$", description="Alertmanager's base URL; alerts go to <url>/api/v2/alerts")
    # Alertmanager ends an alert by itself at its endsAt: each run re-sends an open one, and a job
    # that stops running lets it lapse after this (its metrics' last-success rule catches that)
    hold_h: float = Field(default=36.0, gt=0, le=24 * 31, description="hours an open alert stays firing without a newer run")
    timeout_s: float = Field(default=10.0, gt=0)


class EmailSink(_Sink):
    type: Literal["email"]
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=20.0, gt=0)


SinkConfig = Annotated[
    StdoutSink | FileSink | WebhookSink | SlackSink | PagerDutySink | AlertmanagerSink | EmailSink, Field(discriminator="type")
]
SINK_TYPES = ("stdout", "file", "webhook", "slack", "pagerduty", "email")


class AlertsSection(_Section):
    sinks: list[SinkConfig] = Field(default_factory=list)
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0)
    runbook_url: str | None = None

    @field_validator("sinks")
    @classmethod
    def _unique_names(cls, sinks: list) -> list:
        seen: set[str] = set()
        for sink in sinks:
            if sink.name in seen:
                raise ValueError(f"two sinks are named {sink.name!r}; each sink needs its own name")
            seen.add(sink.name)
        return sinks


class MetricsSection(_Section):
    """Prometheus metrics of each run (drift.alerts.metrics; docs/operations.md, "Prometheus")."""

    # node_exporter's textfile collector: written to a temporary file beside it, then renamed
    textfile: Path | None = Field(default=None, description="a .prom file in node_exporter's textfile directory")
    pushgateway: str | None = Field(default=None, pattern=r"^https?://\S+$", description="a Pushgateway's URL")
    timeout_s: float = Field(default=10.0, gt=0, description="of one push to the Pushgateway")

    @field_validator("textfile")
    @classmethod
    def _prom(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix != ".prom":
            raise ValueError(f"node_exporter reads only *.prom files; got {value.name!r}")
        return value


class JobConfig(_Section):
    job: JobSection
    inputs: InputsSection
    sampling: SamplingSection = SamplingSection()
    baseline: BaselineSection
    limits: LimitsSection = LimitsSection()
    engine: EngineSection = EngineSection()
    image: ImageSection = ImageSection()
    document: DocumentSection = DocumentSection()
    payload: PayloadSection = PayloadSection()
    policy: PolicySection = PolicySection()
    store: StoreSection = StoreSection()
    cache: CacheSection = CacheSection()
    report: ReportSection = ReportSection()
    export: ExportSection = ExportSection()
    alerts: AlertsSection = AlertsSection()
    metrics: MetricsSection = MetricsSection()

    # Set by load_job; not part of the file.
    path: Path = Field(default=Path("."), exclude=True)

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def baseline_sample(self) -> int:
        """How many inputs per segment a baseline samples ([baseline] max_per_segment)."""
        return self.baseline.max_per_segment or BASELINE_SAMPLE_FACTOR * self.sampling.max_per_segment

    @property
    def baseline_dir(self) -> Path:
        """Where the baseline is read and written on this machine (a local copy when it lives under s3://)."""
        if is_remote(self.baseline.dir):
            return baseline_cache(self.baseline_uri)
        return Path(self.baseline.dir) / self.job.name / self.baseline.name

    @property
    def cache_dir(self) -> str:
        """Where the feature cache lives: [cache] dir, or feature-cache/ beside the store."""
        return self.cache.dir or str(Path(self.store.database).parent / "feature-cache")

    @property
    def baseline_uri(self) -> str:
        """The baseline's home: a folder, or an s3:// prefix."""
        if is_remote(self.baseline.dir):
            return f"{self.baseline.dir.rstrip('/')}/{self.job.name}/{self.baseline.name}"
        return str(self.baseline_dir)


def _format_error(path: Path, error: dict) -> str:
    # Discriminated unions add the tag to the location; it only confuses the reader.
    loc = [p for p in error["loc"] if p not in SINK_TYPES]
    top_level = len(loc) == 1  # a whole [section]
    section, key = (loc[:-1], loc[-1]) if loc and isinstance(loc[-1], str) and not top_level else (loc, None)
    name = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(section))
    where = " ".join(x for x in (f"[{name}]" if name else "", key or "") if x) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see jobs/nightly.example.toml)"
    elif error["type"] == "missing":
        message = "required section is missing" if top_level else "required key is missing"
    elif error["type"] == "union_tag_invalid":
        message = f"type: {message}"
    return f"{path}: {where}: {message}"


def _resolve(base: Path, value: Path) -> Path:
    value = Path(value).expanduser()
    return value if value.is_absolute() else (base / value).resolve()


def load_job(path: str | Path) -> JobConfig:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give a job file such as {path / 'demo.toml'}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: job file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        config = JobConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [_format_error(path, err) for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from None

    base = path.resolve().parent
    config.path = path.resolve()
    config.inputs.roots = [
        r if is_remote(r) else str(_resolve(base, Path(r.removeprefix("file://")))) for r in config.inputs.roots
    ]
    if not Path(config.inputs.log).expanduser().is_absolute() and scheme_of(config.inputs.log) is None:
        config.inputs.log = str(base / config.inputs.log)
    if not is_remote(config.baseline.dir):
        config.baseline.dir = str(_resolve(base, Path(config.baseline.dir)))
    config.store.database = _resolve(base, config.store.database)
    if config.cache.dir is not None and not is_remote(config.cache.dir):
        config.cache.dir = str(_resolve(base, Path(config.cache.dir)))
    config.report.dir = _resolve(base, config.report.dir)
    if config.export.evidently_workspace is not None:
        config.export.evidently_workspace = _resolve(base, config.export.evidently_workspace)
    if config.metrics.textfile is not None:
        config.metrics.textfile = _resolve(base, config.metrics.textfile)
    for sink in config.alerts.sinks:
        if isinstance(sink, FileSink):
            sink.path = _resolve(base, sink.path)
    if config.image.architecture is not None:
        config.image.architecture = _resolve(base, config.image.architecture)
    pretrained = config.image.pretrained
    if _looks_like_path(pretrained):
        config.image.pretrained = str(_resolve(base, Path(pretrained)))
    if config.document.text_model not in ("all-MiniLM-L6-v2", "none"):
        config.document.text_model = str(_resolve(base, Path(config.document.text_model)))
    return config


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def pretrained_source(value: str) -> str:
    """What `[image] pretrained` names, the one rule the config and the encoder share: 'untrained',
    a 'checkpoint' file (a path, or a weights file name), or an open_clip 'hub' tag ("laion2b_s34b_b79k",
    "v1.0": a dot in a tag is not a file suffix)."""
    if value == "untrained":
        return "untrained"
    if "/" in value or value.endswith(CHECKPOINT_SUFFIXES):
        return "checkpoint"
    return "hub"


def _looks_like_path(value: str) -> bool:
    return pretrained_source(value) == "checkpoint"
