#!/usr/bin/env bash
# Build the peer venv used by benchmarks/reconstruct_vs_cryodrgn.py:
# cryodrgn 4.3.1 (an external peer program; GPL, never copied into this project), on the
# CPU torch 2.13.0 wheel. Idempotent: does nothing when the venv exists and cryodrgn imports.
#
#   bash benchmarks/setup_peer.sh            # venv at benchmarks/.peer/venv (git-ignored)
#   PEER_VENV=/some/dir bash benchmarks/setup_peer.sh
#
# torch is installed FIRST and pinned by a constraints file for the cryodrgn step, so pip can
# never swap it for another version (which would pull gigabytes of CUDA wheels).
# cryodrgn 4.3.1 requires torch>=2, which torch 2.13.0 satisfies, so no --no-deps is needed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PEER_VENV:-$HERE/.peer/venv}"
PYTHON="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"
CRYODRGN_PIN="cryodrgn==4.3.1"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import cryodrgn, torch" >/dev/null 2>&1; then
    echo "setup_peer: $VENV ready (cryodrgn $("$VENV/bin/python" -c 'import cryodrgn; print(cryodrgn.__version__)'), torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "$TORCH_PIN"

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "$TORCH_PIN" > "$CONSTRAINTS"
"$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" "$CRYODRGN_PIN"

# Check that torch is still the pinned CPU build and that the commands used by the benchmark run.
"$VENV/bin/python" - <<'EOF'
import torch, cryodrgn
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
print("setup_peer: torch", torch.__version__, "cryodrgn", cryodrgn.__version__)
EOF
for sub in backproject_voxel parse_pose_star parse_ctf_star; do
    "$VENV/bin/cryodrgn" "$sub" --help >/dev/null
done
echo "setup_peer: $VENV ready"
