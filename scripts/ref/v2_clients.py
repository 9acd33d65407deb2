"""Drives `loraqa serve` with the v2 clients users have: tritonclient[http]
(its sync client with the defaults, binary tensor data on, and with JSON; its
async_infer; its asyncio client) and KServe's InferenceRESTClient with
InferRequest. Reads JSON on stdin:

  {"url": "http://127.0.0.1:PORT", "model": "fix", "phase": "serving"|"draining",
   "questions": [...], "contexts": [...]}

and prints JSON: for each way of asking, the answers (strings), scores and
spans it got, or the error; the health and metadata it read. The Go test
(serve/clients_test.go) compares them with the engine's answers.
"""

import asyncio
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import httpx  # noqa: E402
import tritonclient.http as triton  # noqa: E402
import tritonclient.http.aio as triton_aio  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402
from kserve import InferenceRESTClient, InferRequest, InferInput, RESTConfig  # noqa: E402
from kserve.protocol.infer_type import InferResponse, RequestedOutput  # noqa: E402


def triton_inputs(qs, cs, binary):
    out = []
    for name, vals in (("question", qs), ("context", cs)):
        t = triton.InferInput(name, [len(vals)], "BYTES")
        arr = np.array([v.encode("utf-8") for v in vals], dtype=np.object_)
        if binary is None:
            t.set_data_from_numpy(arr)  # the client's default: binary_data=True
        else:
            t.set_data_from_numpy(arr, binary_data=binary)
        out.append(t)
    return out


def text(a):
    """An element of a BYTES output: bytes (binary data) or str (JSON)."""
    return a.decode("utf-8") if isinstance(a, bytes) else str(a)


def triton_result(res):
    return {
        "answers": [text(a) for a in res.as_numpy("answer").tolist()],
        "scores": [float(x) for x in res.as_numpy("score").tolist()],
        "starts": [int(x) for x in res.as_numpy("start").tolist()],
        "ends": [int(x) for x in res.as_numpy("end").tolist()],
        "id": res.get_response().get("id", ""),
        "model_version": res.get_response().get("model_version", ""),
    }


def attempt(fn):
    try:
        return fn()
    except InferenceServerException as e:
        return {"error": str(e.message()), "status": str(e.status())}
    except Exception as e:  # noqa: BLE001 - reported to the Go test
        return {"error": f"{type(e).__name__}: {e}"}


def kserve_result(res):
    by = {o.name: o.as_numpy() for o in res.outputs}
    ans = by["answer"].tolist()
    return {
        "answers": [text(a) for a in ans],
        "scores": [float(x) for x in by["score"].tolist()],
        "starts": [int(x) for x in by["start"].tolist()],
        "ends": [int(x) for x in by["end"].tolist()],
        "id": res.id or "",
    }


def kserve_request(model, qs, cs, binary):
    ins = []
    for name, vals in (("question", qs), ("context", cs)):
        if binary:
            t = InferInput(name, [len(vals)], "BYTES")
            t.set_data_from_numpy(np.array([v.encode("utf-8") for v in vals], dtype=np.object_), binary_data=True)
        else:
            t = InferInput(name, [len(vals)], "BYTES", data=list(vals))
        ins.append(t)
    outs = None
    if binary:
        outs = [RequestedOutput(n, parameters={"binary_data": True}) for n in ("answer", "score", "start", "end")]
    return InferRequest(model_name=model, infer_inputs=ins, request_id="kserve-1", request_outputs=outs)


async def kserve_all(url, model, qs, cs, draining):
    out = {}
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=60))
    try:
        out["live"] = await client.is_server_live(url)
        try:
            out["ready"] = await client.is_server_ready(url)
        except httpx.HTTPStatusError as e:  # the client raises on a 503
            out["ready"] = False
            out["ready_status"] = e.response.status_code
            out["ready_body"] = e.response.json()
        out["model_ready"] = await client.is_model_ready(url, model)
        if draining:
            return out

        async def infer(binary):
            try:
                res = await client.infer(url, kserve_request(model, qs, cs, binary), model_name=model)
                return kserve_result(res)
            except Exception as e:  # noqa: BLE001
                return {"error": f"{type(e).__name__}: {e}"}

        out["infer_json"] = await infer(False)
        out["infer_binary"] = await infer(True)
        # KServe's client has no version argument: its request on the versioned route.
        body, json_len = kserve_request(model, qs, cs, True).to_rest()
        async with httpx.AsyncClient(timeout=60) as h:
            r = await h.post(f"{url}/v2/models/{model}/versions/1/infer", content=body,
                             headers={"Inference-Header-Content-Length": str(json_len),
                                      "Content-Type": "application/octet-stream"})
            if r.status_code == 200:
                jl = int(r.headers.get("Inference-Header-Content-Length", len(r.content)))
                out["infer_versioned"] = kserve_result(InferResponse.from_bytes(r.content, jl))
            else:
                out["infer_versioned"] = {"error": r.text, "status": str(r.status_code)}
    finally:
        await client.close()
    return out


async def triton_aio_all(host, model, qs, cs):
    c = triton_aio.InferenceServerClient(host)
    try:
        res = await c.infer(model, triton_inputs(qs, cs, None), request_id="aio-1")
        return triton_result(res)
    except InferenceServerException as e:
        return {"error": str(e.message()), "status": str(e.status())}
    finally:
        await c.close()


def main():
    req = json.load(sys.stdin)
    url, model = req["url"].rstrip("/"), req["model"]
    qs, cs = req.get("questions", []), req.get("contexts", [])
    draining = req.get("phase") == "draining"
    host = url.split("://", 1)[1]
    out = {"triton": {}, "kserve": {}}
    t = out["triton"]
    c = triton.InferenceServerClient(host, concurrency=2, network_timeout=60.0, connection_timeout=60.0)
    t["live"] = c.is_server_live()
    t["ready"] = c.is_server_ready()
    t["model_ready"] = c.is_model_ready(model)
    t["model_version_ready"] = c.is_model_ready(model, "1")
    t["model_version_2_ready"] = c.is_model_ready(model, "2")
    if not draining:
        t["server_metadata"] = attempt(c.get_server_metadata)
        t["model_metadata"] = attempt(lambda: c.get_model_metadata(model))
        t["model_metadata_v1"] = attempt(lambda: c.get_model_metadata(model, model_version="1"))
        t["model_config"] = attempt(lambda: c.get_model_config(model))  # a Triton extension: refused by name
        # The client's defaults: binary tensor data for the inputs, and, no
        # outputs named, binary_data_output for all of them.
        t["infer_default"] = attempt(lambda: triton_result(c.infer(model, triton_inputs(qs, cs, None), request_id="t-1")))
        json_outs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("answer", "score", "start", "end")]
        t["infer_json"] = attempt(lambda: triton_result(c.infer(model, triton_inputs(qs, cs, False), outputs=json_outs)))
        bin_outs = [triton.InferRequestedOutput(n) for n in ("answer", "score", "start", "end")]  # binary_data=True
        t["infer_outputs_default"] = attempt(lambda: triton_result(c.infer(model, triton_inputs(qs, cs, False), outputs=bin_outs)))
        t["infer_versioned"] = attempt(lambda: triton_result(c.infer(model, triton_inputs(qs, cs, None), model_version="1")))
        t["infer_version_2"] = attempt(lambda: triton_result(c.infer(model, triton_inputs(qs, cs, None), model_version="2")))
        t["infer_async"] = attempt(lambda: triton_result(c.async_infer(model, triton_inputs(qs, cs, None), request_id="a-1").get_result()))
        t["infer_aio"] = asyncio.run(triton_aio_all(host, model, qs, cs))
        t["infer_sequence"] = attempt(lambda: triton_result(c.infer(model, triton_inputs(qs, cs, None), sequence_id=7)))
    c.close()
    out["kserve"] = asyncio.run(kserve_all(url, model, qs, cs, draining))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
