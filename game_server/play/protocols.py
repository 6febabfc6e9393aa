"""The wire formats a team API may speak: build the request, read the prediction back.

`native` is the game's own contract (GAME.md §3); `mlflow` and `openinference` let real
serving stacks (MLflow's scoring server; KServe v2 servers such as MLServer and Triton)
play unchanged. Each protocol is a few functions: request body from (request id,
features), raw prediction from the parsed JSON answer (None when there is none), and
the health route that the lobby probes before the game (GAME.md §8).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

# A JSON object: a request body, or the features of one applicant.
JSONObject = dict[str, object]


class ProtocolError(ValueError):
    """A target's protocol settings can't make a request (unknown protocol, no model)."""


@dataclass(frozen=True, slots=True)
class Protocol:
    """How to talk to one kind of team API."""

    name: str
    url: Callable[[str, str | None], str]  # (registered url, model) -> the URL to POST to
    body: Callable[[str, JSONObject], JSONObject]  # (request id, features) -> the JSON request body
    extract: Callable[[object], object]  # parsed JSON answer -> raw prediction, or None
    health: Callable[[str], str]  # registered url -> the health route the lobby probes


def _native_body(request_id: str, features: JSONObject) -> JSONObject:
    """The game's own body: the request id and the features object."""
    return {"id": request_id, "features": features}


def _native_health(url: str) -> str:
    """The starter's `GET /health`, at the root of the team's host and port."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))


def _native_extract(doc: object) -> object:
    """`pred` of a JSON object."""
    return doc.get("pred") if isinstance(doc, dict) else None


def _mlflow_url(url: str, model: str | None) -> str:
    """MLflow's scoring server answers on /invocations."""
    return url.rstrip("/") + "/invocations"


def _mlflow_health(url: str) -> str:
    """MLflow's scoring server answers `GET /health` beside /invocations."""
    return url.rstrip("/") + "/health"


def _mlflow_body(request_id: str, features: JSONObject) -> JSONObject:
    """One row in MLflow's `dataframe_records` format."""
    return {"dataframe_records": [features]}


def _mlflow_extract(doc: object) -> object:
    """The first of `{"predictions": [...]}` or of a bare list."""
    if isinstance(doc, dict):
        doc = doc.get("predictions")
    return doc[0] if isinstance(doc, list) and len(doc) == 1 else None


def _oip_url(url: str, model: str | None) -> str:
    """The Open Inference Protocol's per-model inference endpoint."""
    if not model:
        raise ProtocolError("protocol openinference needs a model name")
    return f"{url.rstrip('/')}/v2/models/{quote(model, safe='')}/infer"


def _oip_health(url: str) -> str:
    """The Open Inference Protocol's server readiness route."""
    return url.rstrip("/") + "/v2/health/ready"


def oip_input(name: str, value: object) -> JSONObject:
    """One named input tensor of shape [1], its datatype chosen from the value.

    None is sent as FP64 with data [null]: decoders that build numpy/pandas columns read
    it as NaN, pandas' missing value, whatever the column's usual type. Values that are
    neither numbers nor strings (none are expected) are sent as their JSON text.
    """
    if isinstance(value, bool):
        datatype = "BOOL"
    elif isinstance(value, int):
        datatype = "INT64"
    elif isinstance(value, float) or value is None:
        datatype = "FP64"
    elif isinstance(value, str):
        datatype = "BYTES"
    else:
        datatype, value = "BYTES", json.dumps(value)
    return {"name": name, "shape": [1], "datatype": datatype, "data": [value]}


def _oip_body(request_id: str, features: JSONObject) -> JSONObject:
    """A v2 inference request: one input per feature, decoded as one pandas row."""
    return {
        "id": request_id,
        "parameters": {"content_type": "pd"},
        "inputs": [oip_input(name, value) for name, value in features.items()],
    }


def _oip_extract(doc: object) -> object:
    """The first datum of the first output (tensor data may be nested: [[1]])."""
    if not isinstance(doc, dict):
        return None
    outputs = doc.get("outputs")
    if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], dict):
        return None
    data = outputs[0].get("data")
    for _ in range(4):  # unwrap a nested row-major tensor of one element
        if not isinstance(data, list) or not data:
            return None
        data = data[0]
        if not isinstance(data, list):
            return data
    return None


PROTOCOLS = {
    "native": Protocol(
        "native", lambda url, model: url, _native_body, _native_extract, _native_health
    ),
    "mlflow": Protocol("mlflow", _mlflow_url, _mlflow_body, _mlflow_extract, _mlflow_health),
    "openinference": Protocol("openinference", _oip_url, _oip_body, _oip_extract, _oip_health),
}


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`; ProtocolError naming the known ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        known = ", ".join(PROTOCOLS)
        raise ProtocolError(f"unknown protocol {name!r} (known: {known})") from None


def check_protocol(name: str, model: str | None = None) -> None:
    """Raise ProtocolError when a target can't be called this way (for registration)."""
    get_protocol(name).url("http://x", model)


def request_url(name: str, url: str, model: str | None = None) -> str:
    """The URL to POST to for a target registered with `url`."""
    return get_protocol(name).url(url, model)


def health_url(name: str, url: str) -> str:
    """The health route of a target registered with `url`: what the lobby probes (GET)."""
    return get_protocol(name).health(url)


def request_body(name: str, request_id: str, features: JSONObject) -> bytes:
    """The JSON request body, encoded (the same for every team speaking `name`).

    Strict JSON: a NaN in the features raises ValueError rather than reaching every team
    as a body no JSON parser accepts (missing values are None, sent as null).
    """
    body = get_protocol(name).body(request_id, features)
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def request_headers(request_id: str) -> dict[str, str]:
    """The headers of every request: JSON content and the request id for tracing."""
    return {"Content-Type": "application/json", "X-Request-ID": request_id}


def extract_pred(name: str, doc: object) -> object:
    """The raw prediction a `name` answer holds, or None."""
    return get_protocol(name).extract(doc)
