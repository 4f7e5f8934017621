"""Lambda's Invoke API for Python handlers on loopback, as `sam local start-lambda` serves it but
without a container: `POST /2015-03-31/functions/{name}/invocations` runs `handler(event, context)`
and answers 200 with its JSON, or, when it raised, 200 with `X-Amz-Function-Error: Unhandled` and
`{"errorMessage", "errorType", "stackTrace"}` as Lambda's Python runtime reports it; an unknown
function is 404 `ResourceNotFoundException`.

    python tests/hooks/invoke_api.py NAME=MODULE:FUNCTION ...   # prints the URL it serves, then serves

The local gateway's tests run a hook written with Powertools for AWS Lambda through it
(`--hooks-endpoint`), so that what Powertools raises and returns is read as on AWS.
"""

import importlib
import json
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"


def load(specs):
    functions = {}
    for spec in specs:
        name, _, target = spec.partition("=")
        module, _, function = target.partition(":")
        functions[name] = getattr(importlib.import_module(module), function)
    return functions


def serve(functions):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            name = path[len(PREFIX):-len(SUFFIX)] if path.startswith(PREFIX) and path.endswith(SUFFIX) else ""
            function = functions.get(name)
            if function is None:
                return self.answer(404, {"Type": "User", "message": f"Function not found: {name}"},
                                   {"x-amzn-ErrorType": "ResourceNotFoundException"})
            context = SimpleNamespace(function_name=name, aws_request_id="local", memory_limit_in_mb=128,
                                      invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
                                      get_remaining_time_in_millis=lambda: 3000)
            try:
                result = function(json.loads(body or b"null"), context)
            except Exception as error:  # what Lambda's runtime reports for an unhandled exception
                return self.answer(200, {"errorMessage": str(error), "errorType": type(error).__name__,
                                         "stackTrace": traceback.format_tb(error.__traceback__)},
                                   {"X-Amz-Function-Error": "Unhandled"})
            self.answer(200, result, {})

        def answer(self, status, payload, headers):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    serve(load(sys.argv[1:]))
