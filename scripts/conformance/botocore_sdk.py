"""Credentials through boto3/botocore's unmodified default chain, for
scripts/conformance.sh.

    botocore_sdk.py                   print the access key id once
    botocore_sdk.py rollover REFKEY   keep one Session: fetch, wait for the
                                      SDK's own refresh point, fetch again;
                                      print "first K", "before R", "second K",
                                      "after R" (R: REFKEY, the sidecar via curl)
"""
import random
import subprocess
import sys
import time

import boto3
import botocore

# botocore starts an advisory refresh when credentials have less than this
# left (credentials.py: _DEFAULT_ADVISORY_REFRESH_TIMEOUT).
ADVISORY = 15 * 60
MAX_WAIT = 240


def ref(cmd):
    return subprocess.run([cmd], check=True, capture_output=True, text=True).stdout.strip()


def main():
    if len(sys.argv) == 1:
        print(boto3.Session().get_credentials().get_frozen_credentials().access_key)
        return
    refkey = sys.argv[2]
    # IMDS credentials already inside botocore's refresh window get their
    # expiry pushed to now + 15 min + random.randint(120, 600) s (static
    # stability, utils.py _evaluate_expiration), so a long-lived process
    # first refreshes 2 to 10 minutes later. Seed the dice for the shortest
    # postponement (2 minutes); the SDK's code is untouched.
    seed = next(s for s in range(100000) if random.Random(s).randint(120, 600) == 120)
    random.seed(seed)
    creds = boto3.Session().get_credentials()
    first = creds.get_frozen_credentials().access_key
    print("first", first, flush=True)
    expiry = creds._expiry_time.timestamp()
    now = time.time()
    if expiry - ADVISORY > now:
        wake = expiry - ADVISORY + 3
        print("note botocore %s postponed its refresh by %.0f s (static stability); waiting for it"
              % (botocore.__version__, wake - now), flush=True)
    else:
        wake = expiry + 3
        print("note waiting %.0f s, past the expiry" % (wake - now), flush=True)
    if wake - now > MAX_WAIT:
        sys.exit("would wait %.0f s" % (wake - now))
    time.sleep(max(wake - time.time(), 0))
    before = ref(refkey)
    second = creds.get_frozen_credentials().access_key
    after = ref(refkey)
    print("before", before)
    print("second", second)
    print("after", after)


if __name__ == "__main__":
    main()
