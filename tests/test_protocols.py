"""The three wire formats: the requests they build, the answers they read, real servers."""

import asyncio
import json

import pytest
from team_apis import TeamAPIs, response

from game_server.play import protocols
from game_server.play.customer import Customer, Target

FEATURES = {"age": 31, "income": 4200.5, "region": "north", "owns_home": False, "debt": None}


def body(name: str, request_id: str = "r-1") -> dict:
    """The decoded request body for protocol `name`."""
    return json.loads(protocols.request_body(name, request_id, FEATURES))


def test_native_request_and_answer():
    """id and features as sent; `pred` of a JSON object."""
    assert body("native") == {"id": "r-1", "features": FEATURES}
    assert protocols.request_url("native", "http://h:1/predict") == "http://h:1/predict"
    assert protocols.extract_pred("native", {"pred": 1, "x": 2}) == 1
    assert protocols.extract_pred("native", [{"pred": 1}]) is None


def test_mlflow_request_and_answer():
    """One dataframe record to /invocations; predictions list or a bare list."""
    assert body("mlflow") == {"dataframe_records": [FEATURES]}
    assert protocols.request_url("mlflow", "http://h:1/") == "http://h:1/invocations"
    assert protocols.extract_pred("mlflow", {"predictions": [1]}) == 1
    assert protocols.extract_pred("mlflow", [0]) == 0
    for answer in ({"predictions": []}, {"predictions": 1}, {"pred": 1}, [1, 0], "1"):
        assert protocols.extract_pred("mlflow", answer) is None


def test_openinference_request():
    """The v2 infer URL, the request id, one typed input per feature and content_type pd."""
    url = protocols.request_url("openinference", "http://h:1", "loan model")
    assert url == "http://h:1/v2/models/loan%20model/infer"
    doc = body("openinference", "r-7")
    assert doc["id"] == "r-7"
    assert doc["parameters"] == {"content_type": "pd"}
    assert doc["inputs"] == [
        {"name": "age", "shape": [1], "datatype": "INT64", "data": [31]},
        {"name": "income", "shape": [1], "datatype": "FP64", "data": [4200.5]},
        {"name": "region", "shape": [1], "datatype": "BYTES", "data": ["north"]},
        {"name": "owns_home", "shape": [1], "datatype": "BOOL", "data": [False]},
        {"name": "debt", "shape": [1], "datatype": "FP64", "data": [None]},
    ]


def test_openinference_answer():
    """The first output's first datum, also from nested tensor data."""
    extract = protocols.PROTOCOLS["openinference"].extract
    assert extract({"outputs": [{"name": "p", "data": [1]}, {"data": [0]}]}) == 1
    assert extract({"outputs": [{"data": [[0]]}]}) == 0
    for answer in (
        {"outputs": []},
        {"outputs": [{"data": []}]},
        {"pred": 1},
        [1],
        {"outputs": [1]},
    ):
        assert extract(answer) is None


def test_features_must_be_strict_json():
    """NaN is not JSON: refused loudly instead of sent to every team."""
    with pytest.raises(ValueError):
        protocols.request_body("native", "r", {"income": float("nan")})


def test_bad_protocol_settings_are_refused_in_one_line():
    """Unknown protocols and an openinference target without a model can't be registered."""
    with pytest.raises(protocols.ProtocolError, match="unknown protocol 'grpc'.*native"):
        protocols.check_protocol("grpc")
    with pytest.raises(protocols.ProtocolError, match="needs a model name"):
        protocols.check_protocol("openinference")
    protocols.check_protocol("openinference", "loan")
    protocols.check_protocol("mlflow")


def mlflow_server(pred):
    """An MLflow-style scoring server: checks the request, answers like MLflow does."""

    async def handle(req, writer):
        ok = req.path == "/invocations" and req.json() == {"dataframe_records": [FEATURES]}
        doc = {"predictions": [pred]} if ok else {"error_code": "BAD_REQUEST"}
        writer.write(response(200 if ok else 400, json.dumps(doc).encode()))

    return handle


def mlflow_bare_list_server(pred):
    """An MLflow server of the older kind that answers with a bare list."""

    async def handle(req, writer):
        writer.write(response(200, json.dumps([pred]).encode()))

    return handle


def openinference_server(model, pred):
    """A KServe v2 server: checks path, id, typed inputs and content_type, answers outputs."""

    async def handle(req, writer):
        doc = req.json()
        inputs = {i["name"]: i for i in doc.get("inputs", [])}
        ok = (
            req.path == f"/v2/models/{model}/infer"
            and doc.get("id") == req.headers["x-request-id"]
            and doc.get("parameters", {}).get("content_type") == "pd"
            and {n: i["data"][0] for n, i in inputs.items()} == FEATURES
            and all(i["shape"] == [1] for i in inputs.values())
        )
        answer = {
            "model_name": model,
            "id": doc.get("id"),
            "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [pred]}],
        }
        body = json.dumps(answer if ok else {"error": "bad request"}).encode()
        writer.write(response(200 if ok else 422, body))

    return handle


def native_server(pred):
    """The game's own contract, checked on the way in."""

    async def handle(req, writer):
        doc = req.json()
        ok = doc == {"id": req.headers["x-request-id"], "features": FEATURES}
        writer.write(response(200 if ok else 400, json.dumps({"pred": pred}).encode()))

    return handle


def test_the_three_protocols_against_real_servers():
    """One round to a team of each protocol: all read, scored right and wrong."""
    servers = TeamAPIs()
    try:
        native = servers.start(native_server(1))
        mlflow = servers.start(mlflow_server(0))
        bare = servers.start(mlflow_bare_list_server(1))
        oip = servers.start(openinference_server("loan", 1))
        targets = [
            Target(1, native.url),
            Target(2, mlflow.base_url, "mlflow"),
            Target(3, bare.base_url + "/", "mlflow"),
            Target(4, oip.base_url, "openinference", "loan"),
        ]

        async def run():
            async with Customer(timeout=0.5) as customer:
                return await customer.ask(targets, "rq-42", FEATURES, 1)

        results = asyncio.run(run())
    finally:
        servers.close()
    assert [(r.team_id, r.score.outcome, r.score.pred, r.score.reason) for r in results] == [
        (1, "correct", 1, None),
        (2, "wrong", 0, None),
        (3, "correct", 1, None),
        (4, "correct", 1, None),
    ]
    assert all(len(api.requests) == 1 for api in (native, mlflow, bare, oip))
