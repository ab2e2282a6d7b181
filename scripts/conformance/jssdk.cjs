// Credentials through the AWS SDK for JavaScript v3's unmodified default
// chain (fromNodeProviderChain), for scripts/conformance.sh.
//
//   node jssdk.cjs                  print the access key id once
//   node jssdk.cjs rollover REFKEY  keep one provider: fetch, wait past the
//                                   expiry, fetch again; print "first K",
//                                   "before R", "second K", "after R"
//                                   (R: REFKEY, the sidecar via curl)
"use strict";
const { fromNodeProviderChain } = require("@aws-sdk/credential-providers");
const { execFileSync } = require("child_process");

const MAX_WAIT_MS = 240000;
const ref = (cmd) => execFileSync(cmd, { encoding: "utf8" }).trim();

async function main() {
  const provider = fromNodeProviderChain();
  const c1 = await provider();
  if (process.argv[2] !== "rollover") {
    console.log(c1.accessKeyId);
    return;
  }
  const refkey = process.argv[3];
  console.log("first " + c1.accessKeyId);
  // The chain is memoized and refreshes credentials with under 5 minutes left.
  const wait = c1.expiration.getTime() - Date.now() + 3000;
  if (wait > MAX_WAIT_MS) throw new Error(`would wait ${wait} ms`);
  console.log(`note waiting ${Math.round(wait / 1000)} s, past the expiry`);
  await new Promise((r) => setTimeout(r, Math.max(wait, 0)));
  const before = ref(refkey);
  const c2 = await provider();
  const after = ref(refkey);
  console.log("before " + before);
  console.log("second " + c2.accessKeyId);
  console.log("after " + after);
}

main().catch((e) => {
  console.error("jssdk:", e && e.message ? e.message : e);
  process.exit(1);
});
