"""Run inside the sandbox container (``docker exec -i C python - '<json>'``): talk to a Jupyter
server on the container's own loopback and print the answers as JSON.

The container has no network, so the tests cannot reach its server from the host; this script
is their hands inside it. It uses only what the image carries (httpx, websocket-client).

Actions (``{"action": ..., "port": ..., "token": ...}``):

- ``http``: ``requests`` is a list of ``{"method", "path", "json"?}``; answers status and body;
- ``page_config``: the JupyterLab page config embedded in ``/lab``;
- ``execute``: start a kernel, run ``code``, answer its stdout and result, shut it down;
- ``ready``: whether ``/api/status`` answers 200.
"""

import json
import re
import sys
import uuid

import httpx
import websocket


def client(args):
    return httpx.Client(
        base_url=f"http://127.0.0.1:{args['port']}",
        headers={"Authorization": f"token {args['token']}"},
        timeout=30,
    )


def http(args):
    answers = []
    with client(args) as c:
        for req in args["requests"]:
            r = c.request(req.get("method", "GET"), req["path"], json=req.get("json"))
            answers.append({"status": r.status_code, "body": r.text[:20000]})
    return answers


def page_config(args):
    with client(args) as c:
        r = c.get("/lab")
    found = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', r.text, re.S
    )
    return {"status": r.status_code, "config": json.loads(found.group(1)) if found else None}


def message(msg_type, content, session):
    return {
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "probe",
                   "session": session, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "content": content, "channel": "shell",
    }


def execute(args):
    with client(args) as c:
        kernel = c.post("/api/kernels", json={"name": "python3"}).json()
        try:
            ws = websocket.create_connection(
                f"ws://127.0.0.1:{args['port']}/api/kernels/{kernel['id']}/channels",
                header=[f"Authorization: token {args['token']}"], timeout=60,
            )
            session = uuid.uuid4().hex
            request = message("execute_request", {"code": args["code"], "silent": False,
                                                  "store_history": False}, session)
            ws.send(json.dumps(request))
            stdout, result, error, status = [], None, None, None
            while status is None:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    stdout.append(content["text"])
                elif kind == "execute_result":
                    result = content["data"].get("text/plain")
                elif kind == "error":
                    error = f"{content['ename']}: {content['evalue']}"
                elif kind == "execute_reply":
                    status = content["status"]
            ws.close()
        finally:
            c.delete(f"/api/kernels/{kernel['id']}")
    return {"status": status, "stdout": "".join(stdout), "result": result, "error": error}


def ready(args):
    try:
        with client(args) as c:
            return c.get("/api/status").status_code == 200
    except httpx.HTTPError:
        return False


ACTIONS = {"http": http, "page_config": page_config, "execute": execute, "ready": ready}

if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print(json.dumps(ACTIONS[arguments["action"]](arguments)))
