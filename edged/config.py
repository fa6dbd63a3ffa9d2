"""Settings: the one source of configuration, loaded from YAML with env overrides.

``load_settings(path)`` reads one YAML file; any key can be overridden by an
environment variable ``EDGED_<SECTION>__<KEY>`` (nested with ``__``), and secrets
(MQTT password, API key) may come from files, e.g. systemd ``LoadCredential=``.
Unknown keys, wrong types and impossible values are errors that name the key path.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from edged.core.errors import ConfigError
from edged.core.hosts import parse_host_entry
from edged.core.names import NAME_RE

Name = Annotated[str, Field(pattern=NAME_RE.pattern)]
PositiveFloat = Annotated[float, Field(gt=0)]
MIN_SECRET_LEN = 16


def default_node_id() -> str:
    """The host name, made a valid node id (letters, digits, ``_.-``; at most 64)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname().split(".")[0]).strip("-._")
    return name[:64] or "edge-1"


# Camera ids edged uses itself: HTTP analyze results and ``edged analyze``.
RESERVED_CAMERA_IDS = frozenset({"http", "offline"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --------------------------------------------------------------------------- cameras


class NuisanceConfig(_Section):
    """Per-frame variation a synthetic line adds, like a real one."""

    shift_px: float = Field(default=4.0, ge=0, le=64)
    rotation_deg: float = Field(default=1.0, ge=0, le=45)
    gain: float = Field(default=0.08, ge=0, le=0.9, description="relative, e.g. 0.08 = ±8 %")
    offset: float = Field(default=6.0, ge=0, le=64, description="grey levels, ±")
    noise_sigma: float = Field(default=2.0, ge=0, le=32)


DefectKind = Literal["scratch", "spot", "missing", "stain", "misprint"]
_DEFAULT_DEFECTS: tuple[DefectKind, ...] = ("scratch", "spot", "missing", "stain")


class SyntheticConfig(_Section):
    """A procedural part on a line: runs anywhere, carries ground truth."""

    scene: Literal["label", "pcb", "texture"] = Field(
        default="label", description="label: a printed label on a belt; pcb: a board; texture"
    )
    texture: Literal["granulate", "grain", "weave"] = Field(
        default="grain", description="the surface of the texture scene (a new instance per frame)"
    )
    width: int = Field(default=1280, ge=64, le=8192)
    height: int = Field(default=1024, ge=64, le=8192)
    pixel_format: Literal[
        "Mono8", "BGR8", "RGB8", "BayerRG8", "BayerGR8", "BayerGB8", "BayerBG8"
    ] = Field(default="BGR8", description="the raw layout delivered, as a camera would")
    defect_rate: float = Field(default=0.1, ge=0, le=1)
    defect_kinds: list[DefectKind] = Field(
        default_factory=lambda: list(_DEFAULT_DEFECTS),
        min_length=1,
        description="defects drawn, equally likely; misprint (label scene): a wrong lot code",
    )
    seed: int = Field(default=0, description="same seed, same line: parts and defects repeat")
    nuisance: NuisanceConfig = Field(default_factory=NuisanceConfig)
    frames: int | None = Field(default=None, ge=1, description="stop after N frames")
    auto_teach: int = Field(
        default=0,
        ge=0,
        le=50,
        description="demo aid: when the recipe needs references and none are stored, "
        "teach this many good frames of the line at start",
    )
    triggered: bool = Field(
        default=False, description="emit a frame only on a software trigger (cmd/trigger)"
    )

    @model_validator(mode="after")
    def _misprint_needs_a_label(self) -> SyntheticConfig:
        if "misprint" in self.defect_kinds and self.scene != "label":
            msg = f"defect_kinds: misprint needs scene 'label' (a lot code), got {self.scene!r}"
            raise ValueError(msg)
        return self


class GenicamConfig(_Section):
    """A GenICam camera through harvesters and a GenTL producer."""

    cti: list[Path] = Field(default_factory=list, description="GenTL producer files")
    serial: str | None = Field(default=None, description="pick the device by serial number")
    user_name: str | None = Field(
        default=None, description="pick the device by its user-defined name"
    )
    model: str | None = Field(default=None, description="pick the device by model name")
    index: int = Field(default=0, ge=0)
    features: dict[str, int | float | str | bool] = Field(
        default_factory=dict,
        description="GenICam features set at start, e.g. ExposureTime: 4000 (refused ones are "
        "reported in the camera's details)",
    )
    buffer_handling: Literal["NewestOnly", "OldestFirst", "OldestFirstOverwrite"] = Field(
        default="NewestOnly", description="the GenTL buffer handling mode of the stream"
    )
    trigger: Literal["off", "software", "hardware"] = Field(
        default="off",
        description="off: free-running at fps; software: cmd/trigger; hardware: a line",
    )
    trigger_source: str = Field(default="Line0", description="TriggerSource for trigger: hardware")
    timeout_s: PositiveFloat = 2.0
    max_consecutive_timeouts: int = Field(default=3, ge=1)
    ring_slots: int = Field(default=4, ge=2, le=64)
    num_buffers: int | None = Field(
        default=None, ge=1, le=1024, description="driver buffers; default: harvesters' (3)"
    )
    chunks: list[str] = Field(
        default_factory=list, description="chunks to enable and carry, e.g. ExposureTime"
    )
    reconnect_attempts: int = Field(
        default=5, ge=1, description="in-process reopen attempts before a fresh process"
    )
    backoff_min_s: PositiveFloat = 0.5
    backoff_max_s: PositiveFloat = 10.0
    watchdog_s: PositiveFloat = Field(
        default=10.0, description="no sign of life from the acquisition process: restart it"
    )
    start_timeout_s: PositiveFloat = 30.0


class OpenCVConfig(_Section):
    """A USB/UVC camera, video file, image folder or network stream through OpenCV."""

    device: int | str = Field(
        default=0, description="index, /dev/v4l/by-id/... path, file, folder or URL"
    )
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    fourcc: str | None = Field(default=None, min_length=4, max_length=4)
    exposure: float | None = Field(
        default=None, description="CAP_PROP_EXPOSURE, in the driver's own units"
    )
    loop: bool = Field(default=False, description="replay a file or folder from the start")
    reconnect_s: PositiveFloat = 2.0


class CameraConfig(_Section):
    """One camera line: a source, the recipe its frames run, and queueing policy."""

    source: Literal["synthetic", "genicam", "opencv"] = Field(
        default="synthetic", description="which section below configures the camera"
    )
    recipe: Name
    enabled: bool = Field(default=True, description="false: configured but not started")
    fps: PositiveFloat = Field(default=5.0, le=1000)
    queue_size: int = Field(default=4, ge=1, le=1024)
    on_full: Literal["drop_oldest", "block"] = Field(
        default="drop_oldest",
        description="free-running lines drop the oldest frame; triggered lines block",
    )
    demosaic: Literal["bilinear", "ea", "vng"] = Field(
        default="bilinear", description="Bayer interpolation: ea = edge-aware, vng = slow, 8-bit"
    )
    bayer_pattern: Literal["RG", "GR", "GB", "BG"] | None = Field(
        default=None, description="real sensor pattern of a camera that reports Mono8"
    )
    synthetic: SyntheticConfig | None = None
    genicam: GenicamConfig | None = None
    opencv: OpenCVConfig | None = None

    @model_validator(mode="after")
    def _source_section(self) -> CameraConfig:
        if self.source == "synthetic" and self.synthetic is None:
            self.synthetic = SyntheticConfig()
        if self.source == "genicam" and self.genicam is None:
            msg = "source is 'genicam': expected a 'genicam' section, got none"
            raise ValueError(msg)
        if self.source == "opencv" and self.opencv is None:
            msg = "source is 'opencv': expected an 'opencv' section, got none"
            raise ValueError(msg)
        return self


# --------------------------------------------------------------------------- recipes


class RecipeConfig(_Section):
    """Which checks run and the limits that turn their figures into a verdict.

    ``checks`` maps a check name to its options; ``type:`` among them names the
    check (``quality``, ``mask``, ``difference`` ...) and defaults to the name.
    ``limits`` are expressions over the checks' figures, e.g.
    ``"quality.brightness.over_per <= 2"`` or ``"mask.area_px in [1000, 50000]"``.
    This model checks their shape only; :mod:`edged.recipes.validate` checks them
    against the check registry (types, options, figure paths) where settings are
    loaded for use.
    """

    description: str = Field(default="", description="shown on the page and in the admin API")
    checks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="check name -> its options (docs/checks.md)"
    )
    limits: list[str] = Field(
        default_factory=list,
        description="every limit must hold for a pass, e.g. difference.count == 0",
    )

    @field_validator("limits")
    @classmethod
    def _parse_limits(cls, limits: list[str]) -> list[str]:
        from edged.core.limits import parse_limit

        for text in limits:
            parse_limit(text)  # raises ValueError with the reason
        return limits


# --------------------------------------------------------------------------- outputs


class MqttTopicsConfig(_Section):
    result: bool = Field(default=True, description="the full Result on .../{camera}/result")
    verdict: bool = Field(default=True, description="the compact verdict on .../{camera}/verdict")
    state: bool = Field(default=True, description="retained camera state on .../{camera}/state")


class MqttImageConfig(_Section):
    """Annotated JPEGs on ``{prefix}/{node_id}/{camera}/image`` for HMI/SCADA dashboards.

    The frame with its defect boxes and labels, published retained at QoS 0 (best
    effort, never queued in the outbox: a dashboard wants the latest picture, not
    every one), at most ``max_per_s`` per camera and at most ``max_bytes`` each.
    """

    parts: Literal["off", "fail", "all"] = Field(
        default="fail", description="which parts: failed ones (default), every part, or none"
    )
    max_per_s: PositiveFloat = Field(default=1.0, le=100, description="per camera")
    max_bytes: int = Field(
        default=256 * 1024,
        ge=4096,
        le=16 * 1024 * 1024,
        description="bigger images are scaled down until they fit (or skipped)",
    )
    max_width_px: int = Field(default=1280, ge=64, le=8192, description="scaled down to this")
    jpeg_quality: int = Field(default=80, ge=10, le=100)
    retain: bool = Field(default=True, description="a new subscriber gets the last image")


class MqttConfig(_Section):
    """The broker edged publishes verdicts to (see docs/mqtt.md)."""

    enabled: bool = Field(default=True, description="false: no MQTT at all (results are not kept)")
    host: str = Field(default="127.0.0.1", description="the broker's host name or address")
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT version")
    client_id: str | None = Field(default=None, description="default: edged-<node_id>")
    username: str | None = Field(default=None, description="broker user")
    password: str | None = Field(default=None, description="inline; prefer password_file")
    password_file: Path | None = Field(
        default=None, description="file with the password; a bare name: a systemd credential"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    tls: bool = Field(default=False, description="connect with TLS")
    ca_file: Path | None = Field(default=None, description="CA certificate(s) to verify the broker")
    cert_file: Path | None = Field(
        default=None, description="client certificate, if the broker wants one"
    )
    key_file: Path | None = Field(default=None, description="the client certificate's key")
    tls_insecure: bool = Field(
        default=False, description="skip the host-name check only (the chain is still verified)"
    )
    prefix: str = Field(default="edged", pattern=r"^[^#+\s]+$")
    qos: Literal[0, 1, 2] = Field(default=1, description="for result and verdict messages")
    topics: MqttTopicsConfig = Field(default_factory=MqttTopicsConfig)
    image: MqttImageConfig = Field(default_factory=MqttImageConfig)
    reconnect_min_s: PositiveFloat = 0.5
    reconnect_max_s: PositiveFloat = 30.0
    inflight: int = Field(default=32, ge=1, le=65535)
    drain_rate_per_s: PositiveFloat = Field(default=5000.0)
    outbox_max_messages: int = Field(default=1_000_000, ge=1)
    outbox_max_bytes: int = Field(
        default=2 * 1024**3, ge=1024 * 1024, description="topics + payloads kept, bytes"
    )
    state_dir_min_free_bytes: int = Field(
        default=512 * 1024**2,
        ge=0,
        description="alarm (log, edged_state_dir_low_space) when state_dir has less free",
    )
    outbox_max_age_s: PositiveFloat = Field(default=7 * 24 * 3600.0)
    outbox_synchronous: Literal["normal", "full"] = Field(
        default="normal",
        description="normal: survives a crash or kill -9; full: also a power cut (fsyncs)",
    )
    dead_letter_max_messages: int = Field(
        default=10_000, ge=0, description="messages the broker refused, kept for inspection"
    )
    commands: bool = Field(default=True, description="accept cmd/trigger, cmd/recipe, cmd/teach")
    command_cameras: list[str] | None = Field(
        default=None, description="cameras that accept commands; default all"
    )
    command_secret: str | None = Field(
        default=None, description="HMAC secret for command tokens (prefer command_secret_file)"
    )
    command_secret_file: Path | None = None
    trust_broker_acl: bool = Field(
        default=False,
        description="accept commands without a token: the broker's ACLs are the control",
    )
    command_token_window_s: PositiveFloat = Field(
        default=30.0, le=3600, description="accepted clock difference of a command token"
    )
    teach_max_frames: int = Field(
        default=20, ge=1, le=1000, description="most frames one MQTT teach may collect"
    )
    teach_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024 * 1024, description="memory one teach may hold"
    )
    teach_activate: Literal["confirm", "immediate"] = Field(
        default="confirm",
        description="confirm: an MQTT-taught reference waits for a teach {confirm} command "
        "or the admin API; immediate: it is active at once",
    )

    @model_validator(mode="after")
    def _secret_once(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            msg = "expected one of 'password' or 'password_file', got both"
            raise ValueError(msg)
        if self.command_secret is not None and self.command_secret_file is not None:
            msg = "expected one of 'command_secret' or 'command_secret_file', got both"
            raise ValueError(msg)
        if self.command_secret is not None and len(self.command_secret.strip()) < MIN_SECRET_LEN:
            msg = (
                f"command_secret: expected at least {MIN_SECRET_LEN} characters, "
                f"got {len(self.command_secret.strip())}"
            )
            raise ValueError(msg)
        if self.reconnect_max_s < self.reconnect_min_s:
            msg = (
                f"reconnect_max_s ({self.reconnect_max_s}) must be >= "
                f"reconnect_min_s ({self.reconnect_min_s})"
            )
            raise ValueError(msg)
        return self


class HttpConfig(_Section):
    enabled: bool = Field(default=True, description="serve HTTP (APIs, the page, metrics)")
    host: str = Field(
        default="127.0.0.1", description="listen address; 0.0.0.0 for the plant network"
    )
    port: int = Field(default=8000, ge=0, le=65535)
    api_key: str | None = Field(
        default=None, description="wanted by every route but the public ones; prefer api_key_file"
    )
    api_key_file: Path | None = Field(
        default=None, description="file with the API key; a bare name: a systemd credential"
    )
    default_recipe: Name | None = Field(
        default=None, description="recipe for analyze requests without recipe=; default: first"
    )
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(default=50_000_000, ge=1, description="decoded pixel limit")
    max_concurrent: int = Field(default=4, ge=1, le=256)
    queue_depth: int = Field(
        default=32,
        ge=0,
        le=4096,
        description="analysis requests that wait in line (bodies received) while every "
        "max_concurrent slot is taken; one more is refused with 429 (0: refuse at once)",
    )
    queue_timeout_s: PositiveFloat = Field(
        default=10.0,
        description="longest wait in line before a 429 (never past request_timeout_s)",
    )
    request_timeout_s: PositiveFloat = 30.0
    reference_cache_entries: int = Field(
        default=8,
        ge=0,
        le=4096,
        description=(
            "prepared references the LTU differences, alignmentMatrix and distance services "
            "keep (0: none)"
        ),
    )
    reference_cache_bytes: int = Field(
        default=128 * 1024**2, ge=0, description="bytes those prepared references may hold"
    )
    body_timeout_s: PositiveFloat = Field(
        default=30.0, le=3600, description="a request body not received in time is 408"
    )
    body_budget_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        description="request bodies being received or waiting for an analysis slot, "
        "together (by declared size); beyond: 429",
    )
    idle_timeout_s: PositiveFloat = Field(
        default=15.0,
        le=3600,
        description="a connection without a complete request for this long is closed "
        "(idle, or still sending its headers)",
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        le=65535,
        description="open connections at most; more are answered 503 and closed",
    )
    shared_memory: bool = Field(
        default=True,
        description="serve analyze_image_shared_memory to loopback clients (off when edged "
        "runs in a container that does not share /dev/shm with its clients)",
    )
    url_fetch_hosts: list[str] = Field(
        default_factory=list,
        description="hosts LTU/PixLab services may fetch images from: names, patterns "
        "('*.example.com'), IPs or CIDRs ('10.0.0.0/8'); none by default; link-local "
        "and metadata addresses never",
    )
    url_fetch_timeout_s: PositiveFloat = Field(
        default=10.0, le=300, description="time limit of one image fetch by URL"
    )

    @field_validator("url_fetch_hosts")
    @classmethod
    def _host_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_host_entry(entry)  # ValueError says what is accepted
        return value

    @model_validator(mode="after")
    def _secret_once(self) -> HttpConfig:
        if self.api_key is not None and self.api_key_file is not None:
            msg = "expected one of 'api_key' or 'api_key_file', got both"
            raise ValueError(msg)
        if self.api_key is not None and not self.api_key.strip():
            msg = (
                "api_key: expected a non-empty key (an empty key would turn authentication "
                "off; remove the key to run without one), got an empty string"
            )
            raise ValueError(msg)
        return self


class MetricsConfig(_Section):
    enabled: bool = Field(default=True, description="serve /metrics for Prometheus")
    port: int | None = Field(
        default=None, ge=0, le=65535, description="separate port; default: on the HTTP port"
    )
    host: str = Field(default="127.0.0.1", description="listen address of the separate port")


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="for edged's own loggers"
    )
    format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, for log shippers"
    )
    repeat_window_s: PositiveFloat = Field(
        default=60.0, description="identical errors are logged once per window"
    )
    summary_interval_s: float = Field(
        default=60.0,
        ge=0,
        le=86400,
        description="log a one-line summary per camera this often; 0: never. Off under "
        "systemd (NOTIFY_SOCKET or JOURNAL_STREAM set), where STATUS= carries it",
    )


class FailuresConfig(_Section):
    """The last failed parts, annotated, kept on disk for the web page and admin API.

    Files live under ``state_dir/failures/<camera>/``: one JPEG (the frame with its
    defect boxes and labels) and one Result JSON per failed part. The oldest go first
    when a camera has more than ``keep_per_camera`` or all of them more than ``max_bytes``.
    """

    enabled: bool = Field(default=True, description="keep the last failed parts on disk")
    keep_per_camera: int = Field(default=20, ge=1, le=10_000)
    max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=64 * 1024, description="all cameras' files together"
    )
    jpeg_quality: int = Field(default=85, ge=1, le=100)


class PipelineConfig(_Section):
    """Inspection workers and shutdown."""

    workers: int = Field(default=2, ge=1, le=64, description="inspection worker threads")
    shutdown_grace_s: PositiveFloat = Field(default=10.0, le=600)
    restart_backoff_min_s: PositiveFloat = 0.5
    restart_backoff_max_s: PositiveFloat = 30.0
    watchdog_stall_s: PositiveFloat = Field(
        default=30.0, description="no progress for this long stops the systemd watchdog"
    )


class RecognitionConfig(_Section):
    """Recognition models (ONNX, onnxruntime on the CPU) and the Deepomatic task store."""

    threads: int = Field(
        default=1, ge=1, le=64, description="onnxruntime intra-op threads per loaded model"
    )
    keep_revisions: int = Field(default=5, ge=1, le=1000, description="per network/spec/version")
    max_tasks: int = Field(default=10_000, ge=1, description="inference tasks kept in memory")
    max_pending_tasks: int = Field(
        default=256, ge=1, description="queued inference tasks; more are 503 (retry later)"
    )
    task_ttl_s: PositiveFloat = Field(
        default=600.0, description="finished tasks are kept this long"
    )
    classification: int | str | None = Field(
        default=None,
        description="LTU classification: a version id or a public model name",
    )
    object_detection: int | str | None = Field(
        default=None,
        description="LTU objectDetection: a version id or a public model name",
    )


# --------------------------------------------------------------------------- root


class Settings(BaseSettings):
    """The whole daemon's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="EDGED_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    node_id: Name = Field(
        default_factory=default_node_id,
        description="this station's name in MQTT topics and Results; default: the host name",
    )
    cameras: dict[Name, CameraConfig] = Field(default_factory=dict)
    recipes: dict[Name, RecipeConfig] = Field(default_factory=dict)
    references_dir: Path = Field(
        default=Path("/var/lib/edged/references"),
        description="taught references, versioned per recipe and camera",
    )
    state_dir: Path = Field(
        default=Path("/var/lib/edged"),
        description="the durable MQTT outbox and the kept failed parts",
    )
    models_dir: Path | None = Field(
        default=None, description="the model repository; default: <state_dir>/models"
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    failures: FailuresConfig = Field(default_factory=FailuresConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    recognition: RecognitionConfig = Field(default_factory=RecognitionConfig)

    @model_validator(mode="after")
    def _cross_refs(self) -> Settings:
        for cam_id, cam in self.cameras.items():
            if cam_id.lower() in RESERVED_CAMERA_IDS:
                msg = (
                    f"cameras.{cam_id}: expected a camera id other than "
                    f"{sorted(RESERVED_CAMERA_IDS)} (used for HTTP and offline results), "
                    f"got {cam_id!r}"
                )
                raise ValueError(msg)
            if cam.recipe not in self.recipes:
                msg = (
                    f"cameras.{cam_id}.recipe: expected one of {sorted(self.recipes)}, "
                    f"got {cam.recipe!r}"
                )
                raise ValueError(msg)
        if self.http.default_recipe is not None and self.http.default_recipe not in self.recipes:
            msg = (
                f"http.default_recipe: expected one of {sorted(self.recipes)}, "
                f"got {self.http.default_recipe!r}"
            )
            raise ValueError(msg)
        for cam_id in self.mqtt.command_cameras or []:
            if cam_id not in self.cameras:
                msg = (
                    f"mqtt.command_cameras: expected camera ids from {sorted(self.cameras)}, "
                    f"got {cam_id!r}"
                )
                raise ValueError(msg)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: explicit arguments, environment, the YAML file.
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    # ------------------------------------------------------------------ helpers

    @property
    def http_recipe(self) -> str | None:
        """The recipe analyze requests use without ``recipe=``."""
        return self.http.default_recipe or next(iter(self.recipes), None)

    @property
    def models_path(self) -> Path:
        """Where the model repository lives (``models_dir``, else under ``state_dir``)."""
        return self.models_dir if self.models_dir is not None else self.state_dir / "models"

    def mqtt_password(self) -> str | None:
        return _secret(self.mqtt.password, self.mqtt.password_file, "mqtt.password_file")

    def http_api_key(self) -> str | None:
        return _secret(self.http.api_key, self.http.api_key_file, "http.api_key_file")

    def command_secret(self) -> bytes | None:
        """The MQTT command HMAC secret (inline or from its file), or None."""
        m = self.mqtt
        value = _secret(m.command_secret, m.command_secret_file, "mqtt.command_secret_file")
        if value is None:
            return None
        if len(value) < MIN_SECRET_LEN:
            msg = (
                f"mqtt.command_secret_file: expected a secret of at least {MIN_SECRET_LEN} "
                f"characters, got {len(value)}"
            )
            raise ConfigError(msg)
        return value.encode("utf-8")

    def secret_files(self) -> list[tuple[str, Path]]:
        """(key, path) of every secret file the config names."""
        named = [
            ("mqtt.password_file", self.mqtt.password_file),
            ("mqtt.command_secret_file", self.mqtt.command_secret_file),
            ("http.api_key_file", self.http.api_key_file),
        ]
        return [(key, path) for key, path in named if path is not None]


def _secret(value: str | None, path: Path | None, key: str) -> str | None:
    """A secret given inline or in a file; a bare file name is looked up in systemd's
    ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``) when that is set. A blank file
    is an error: an empty secret must never mean "no authentication"."""
    if value is not None:
        return value
    if path is None:
        return None
    path = secret_path(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        msg = f"{key}: expected a readable file, got {str(path)!r} ({reason})"
        raise ConfigError(msg) from exc
    if not text:
        msg = f"{key}: expected a file holding the secret, got an empty file {str(path)!r}"
        raise ConfigError(msg)
    return text


def secret_path(path: Path) -> Path:
    """Where a secret file is: a bare name is looked up in ``$CREDENTIALS_DIRECTORY``."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and not path.is_absolute() and len(path.parts) == 1:
        return Path(creds) / path
    return path


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per error: ``key.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        shown = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"{loc}: {msg}{shown}")
    return lines


def load_settings(path: str | os.PathLike[str] | None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (YAML) with environment overrides.

    Raises ConfigError whose message has one line per problem, each with its key path.
    """
    yaml_file: Path | None = None
    if path is not None:
        yaml_file = Path(path)
        if not yaml_file.is_file():
            msg = f"config file: expected a readable YAML file, got {str(yaml_file)!r}"
            raise ConfigError(msg)
        _check_yaml(yaml_file)

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=yaml_file, yaml_file_encoding="utf-8")

    try:
        return _FileSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_validation_error(exc))) from exc


def _check_yaml(path: Path) -> None:
    import yaml

    class _UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice in one mapping (YAML keeps the
        last silently: a duplicated ``limits`` or ``api_key`` must not go unnoticed)."""

    def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: let the schema refuse it
                continue
            if first != key_node.start_mark.line + 1:
                msg = (
                    f"config file {str(path)!r}: expected each key once per mapping, got "
                    f"{key!r} twice (lines {first} and {key_node.start_mark.line + 1})"
                )
                raise ConfigError(msg)
        return loader.construct_mapping(node)

    _UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        msg = f"config file {str(path)!r}: expected valid YAML, got a syntax error: {exc}"
        raise ConfigError(msg) from exc
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"config file {str(path)!r}: cannot be read ({exc})"
        raise ConfigError(msg) from exc
    if doc is None:
        msg = (
            f"config file {str(path)!r}: expected a mapping of settings, got an empty file "
            "(an empty file would run every default: no cameras, no recipes)"
        )
        raise ConfigError(msg)
    if not isinstance(doc, dict):
        msg = f"config file {str(path)!r}: expected a mapping at the top, got {type(doc).__name__}"
        raise ConfigError(msg)
