"""Drive botocore's own STS client against a SigV4 verifier.

Used by botocore_test.go. Two modes:

  live <endpoint>   Call GetCallerIdentity and AssumeRole (with and without a
                    session token) on <endpoint> through an unmodified botocore
                    client, then presign GetCallerIdentity with botocore and GET
                    the URL. Exits non-zero if any call fails, i.e. if the Go
                    server refused the signature.

  golden            Sign the same calls at a fixed time without sending them
                    (a before-send hook captures the prepared request) and print
                    them as JSON, with the canonical request botocore built.
                    Its output is testdata/botocore_golden.json.

Credentials come from AKID / SECRET / TOKEN environment variables.
"""
import datetime
import json
import os
import sys
import urllib.request

import botocore
import botocore.auth
import botocore.session
from botocore.config import Config

AKID = os.environ.get("AKID", "AKIDBOTOCOREEXAMPLE")
SECRET = os.environ.get("SECRET", "botocore/secret/EXAMPLEKEY+0123456789abcdef")
TOKEN = os.environ.get("TOKEN", "IQoJb3JpZ2luX2VjEXAMPLE//token+with/slashes==")
ROLE = "arn:aws:iam::123456789012:role/demo"


def client(endpoint, token):
    s = botocore.session.get_session()
    return s.create_client(
        "sts",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def live(endpoint):
    for token in (None, TOKEN):
        c = client(endpoint, token)
        c.get_caller_identity()
        c.assume_role(RoleArn=ROLE, RoleSessionName="botocore session",
                      DurationSeconds=900)
    # HttpMethod="GET" is what `aws eks get-token` passes; without it botocore
    # signs the URL for the operation's POST.
    url = client(endpoint, TOKEN).generate_presigned_url(
        "get_caller_identity", ExpiresIn=300, HttpMethod="GET")
    with urllib.request.urlopen(url) as resp:
        resp.read()
    url = client(endpoint, None).generate_presigned_url(
        "get_caller_identity", ExpiresIn=300)
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST")) as resp:
        resp.read()


class Captured(Exception):
    pass


def golden():
    fixed = datetime.datetime(2024, 3, 1, 12, 0, 0)
    botocore.auth.get_current_datetime = lambda *a, **k: fixed
    creqs = []
    orig = botocore.auth.SigV4Auth.canonical_request

    def record(self, request):
        c = orig(self, request)
        creqs.append(c)
        return c

    botocore.auth.SigV4Auth.canonical_request = record
    out = []
    endpoint = "http://127.0.0.1:8443"

    def capture(name, token, call):
        c = client(endpoint, token)
        seen = {}

        def hook(request, **kwargs):
            seen["r"] = request
            raise Captured()

        c.meta.events.register("before-send.sts.*", hook)
        try:
            call(c)
        except Captured:
            pass
        r = seen["r"]
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        out.append({
            "name": name,
            "method": r.method,
            "url": r.url,
            "headers": [[k, v if isinstance(v, str) else v.decode()] for k, v in r.headers.items()],
            "body": body.decode(),
            "canonical_request": creqs[-1],
        })

    capture("GetCallerIdentity", None, lambda c: c.get_caller_identity())
    capture("AssumeRole+token", TOKEN, lambda c: c.assume_role(
        RoleArn=ROLE, RoleSessionName="botocore session", DurationSeconds=900))
    url = client(endpoint, TOKEN).generate_presigned_url(
        "get_caller_identity", ExpiresIn=300, HttpMethod="GET")
    out.append({"name": "presigned GET GetCallerIdentity+token", "method": "GET",
                "url": url, "headers": [], "body": "",
                "canonical_request": creqs[-1]})
    url = client(endpoint, None).generate_presigned_url(
        "get_caller_identity", ExpiresIn=300)
    out.append({"name": "presigned POST GetCallerIdentity", "method": "POST",
                "url": url, "headers": [], "body": "",
                "canonical_request": creqs[-1]})
    json.dump({
        "generated_by": "python3 testdata/botocore_client.py golden (botocore %s)" % botocore.__version__,
        "time": fixed.strftime("%Y%m%dT%H%M%SZ"),
        "access_key_id": AKID,
        "secret_access_key": SECRET,
        "session_token": TOKEN,
        "requests": out,
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if sys.argv[1] == "live":
        live(sys.argv[2])
    else:
        golden()
