# Docker engine (dockerd + containerd + runc) and a static busybox for the locally imported test image.
# The tests start a private dockerd each (tests/dockerd.py); nothing is started here.
command -v dockerd >/dev/null || need+=(docker.io)
[[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
