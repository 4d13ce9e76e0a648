#!/usr/bin/env python3
"""Checks a signed soc2-operator JSON export without soc2-operator: Python's standard library
for JSON and SHA-256, the `openssl` command for Ed25519. The steps are those of
docs/evidence-chain.md, "Verifying an export".

    python3 verify-bundle.py EXPORT.json PUBLIC_KEY.pem      # exit 0: genuine; 1: not
"""
import base64, datetime, hashlib, json, os, struct, subprocess, sys, tempfile


def fail(why):
    sys.exit(f"NOT GENUINE: {why}")


def ed25519_verify(pem_path, message, signature_hex):
    with tempfile.TemporaryDirectory() as d:
        msg, sig = os.path.join(d, "msg"), os.path.join(d, "sig")
        open(msg, "wb").write(message)
        open(sig, "wb").write(bytes.fromhex(signature_hex))
        return subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem_path, "-rawin",
             "-in", msg, "-sigfile", sig], capture_output=True).returncode == 0


def micros(rfc3339):
    t = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1)


def text(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def opt(s):
    return b"\xff\xff\xff\xff" if s is None else text(s)


def event_hash(e):
    enc = (b"soc2-operator/audit-event/v1\n" + struct.pack(">q", e["seq"]) + text(e["id"])
           + struct.pack(">q", e["occurredAtMicros"]) + text(e["type"]) + opt(e.get("actor"))
           + opt(e.get("outcome")) + opt(e.get("resource")) + opt(e.get("attributes")))
    return hashlib.sha256(bytes.fromhex(e["prevHash"]) + enc).hexdigest()


def render(doc):
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


bundle_path, pem_path = sys.argv[1], sys.argv[2]
raw = open(bundle_path, "rb").read()
try:
    doc = json.loads(raw)
except ValueError as e:
    fail(f"not JSON ({e})")
# 1. The exact form the operator writes: no byte outside what the signature covers.
if render(doc) != raw:
    fail("not in the operator's exact form")
# 2. The export's signature, by the given key.
der = base64.b64decode("".join(l for l in open(pem_path).read().splitlines() if "-----" not in l))
if len(der) != 44 or der[:12] != bytes.fromhex("302a300506032b6570032100"):
    fail("the public key is not an Ed25519 SPKI PEM")
key_hex = der[12:].hex()
signature = doc.pop("signature", None)
if signature is None or signature.get("algorithm") != "Ed25519" or signature.get("publicKey") != key_hex:
    fail("not signed by this key")
if not ed25519_verify(pem_path, b"soc2-operator/export/v1\n" + render(doc), signature["value"]):
    fail("the export's signature does not verify")
# 3. The checkpoint: signed by the same key, of the export's chain head.
cp, head = doc.get("checkpoint"), doc["chainHead"]
if cp is None or cp["publicKey"] != key_hex:
    fail("no checkpoint by this key")
cp_message = (b"soc2-operator/checkpoint/v1\n" + struct.pack(">q", cp["seq"]) + bytes.fromhex(cp["hash"])
              + struct.pack(">q", micros(cp["signedAt"])))
if not ed25519_verify(pem_path, cp_message, cp["signature"]):
    fail("the checkpoint's signature does not verify")
if (cp["seq"], cp["hash"]) != (head["seq"], head["hash"]):
    fail("the checkpoint is not of the chain head")
# 4. Every carried event hashes to its chain hash, links to its neighbour, lies on the signed chain.
previous = None
for e in doc["evidence"]:
    if micros(e["occurredAt"]) != e["occurredAtMicros"] or event_hash(e) != e["hash"]:
        fail(f"event #{e['seq']} does not hash to its chain hash")
    if not 1 <= e["seq"] <= head["seq"] or (e["seq"] == head["seq"] and e["hash"] != head["hash"]):
        fail(f"event #{e['seq']} is not on the signed chain")
    if previous and (e["seq"] <= previous["seq"]
                     or (e["seq"] == previous["seq"] + 1 and e["prevHash"] != previous["hash"])):
        fail(f"event #{e['seq']} does not link to the event before it")
    previous = e
# 5. The requirements cite only carried events.
carried = {(e["id"], e["hash"]) for e in doc["evidence"]}
for r in doc["requirements"]:
    for cited in r["recentEvents"]:
        if (cited["id"], cited["hash"]) not in carried:
            fail(f"{r['id']} cites event {cited['id']}, which the export does not carry")
print(f"genuine: {len(doc['requirements'])} requirements, {len(doc['evidence'])} events, "
      f"chain head #{head['seq']} {head['hash']}")
