#!/usr/bin/env bash
# scripts/package --test: installs the package on this machine and runs it as
# an operator would, then removes and purges it.
#
#   1. apt install ./wxgate_VERSION_ARCH.deb (dependencies by package name)
#   2. the wxgate system user, /etc/wxgate/secrets.env 0640 root:wxgate,
#      `wxgate check -c /etc/wxgate/wxgate.lua` as installed (as root and as
#      the service user), `wxgate version` naming the package's version
#   3. systemd-analyze verify on the installed unit
#   4. the installed binary serves the installed config as the wxgate user
#      (setpriv: no systemd as PID 1 here), with the unit's own command line
#      and NoNewPrivileges; a `wxgate sandbox` stands in for WeChat: the
#      config is loaded through a small overlay that changes only the ports
#      and the WeChat base URLs; one whole login and ticket redemption
#   5. `wxgate demo` as installed serves the installed examples
#   6. apt remove: the conffile and secrets stay; apt purge: nothing of the
#      package is left but the wxgate user (Debian keeps system users)
#
# Needs root. Refuses to touch a wxgate that it did not install itself.
set -euo pipefail
deb=${1:?usage: tests/package/test_deb.sh PATH/TO/wxgate_VERSION_ARCH.deb}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "test_deb.sh: needs root (apt install)" >&2; exit 1; }

# One run at a time on a machine; a run that died leaves its marker, and the
# next run may then purge what it installed.
exec 9>/var/lock/wxgate-package-test.lock
flock -w 600 9
marker=/var/tmp/wxgate-package-test.installed
if dpkg-query -W -f='${Status}' wxgate 2>/dev/null | grep -q "installed\|config-files"; then
  if [ ! -e "$marker" ]; then
    echo "test_deb.sh: wxgate is installed and not by this test; apt purge wxgate first" >&2
    exit 1
  fi
  apt-get purge -y -q wxgate >/dev/null
fi

tmp=$(mktemp -d /tmp/wxgate-deb-test-XXXXXX)
# Stops what this script started and is still running (its own jobs only:
# a PID already waited for may belong to someone else by now).
cleanup() {
  local running
  running=$(jobs -p)
  [ -z "$running" ] || kill $running 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
step() { echo "== package test: $*"; }
fail() { echo "test_deb.sh: FAILED: $*" >&2; exit 1; }
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() { # URL: until it answers 200, at most 20 s
  for _ in $(seq 200); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

step "apt install $deb"
touch "$marker"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$deb" \
  >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; fail "apt install"; }
dpkg -L wxgate | sort >"$tmp/files"
version=$(dpkg-query -W -f='${Version}' wxgate)

step "the user, the files, their modes"
getent passwd wxgate | grep -q ':/nonexistent:/usr/sbin/nologin$' || fail "no wxgate system user"
[ "$(stat -c '%a %U %G' /etc/wxgate/secrets.env)" = "640 root wxgate" ] ||
  fail "secrets.env is $(stat -c '%a %U %G' /etc/wxgate/secrets.env)"
grep -qx '/etc/wxgate/wxgate.lua' /var/lib/dpkg/info/wxgate.conffiles || fail "not a conffile"
for f in /usr/bin/wxgate /usr/share/man/man8/wxgate.8.gz /lib/systemd/system/wxgate.service \
         /usr/share/wxgate/examples/demo/app.lua /usr/share/doc/wxgate/copyright; do
  [ -f "$f" ] || fail "$f is missing"
done
/usr/bin/wxgate version | tee "$tmp/version"
head -1 "$tmp/version" | grep -qx "wxgate $version" || fail "wxgate version is not $version"
grep -q '^git revision: [0-9a-f]' "$tmp/version" || fail "no git revision"

step "wxgate check -c /etc/wxgate/wxgate.lua"
# nothing from this shell's environment: the secrets come from the file
env -i PATH=/usr/bin:/bin /usr/bin/wxgate check -c /etc/wxgate/wxgate.lua
setpriv --reuid=wxgate --regid=wxgate --init-groups /usr/bin/wxgate check -c /etc/wxgate/wxgate.lua
if setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/wxgate check \
     -c /etc/wxgate/wxgate.lua 2>"$tmp/nobody.err"; then
  fail "another user can read the secrets"
fi
grep -q "env_file: cannot read /etc/wxgate/secrets.env: Permission denied" "$tmp/nobody.err" ||
  fail "unclear refusal: $(cat "$tmp/nobody.err")"

step "systemd-analyze verify /lib/systemd/system/wxgate.service"
systemd-analyze verify /lib/systemd/system/wxgate.service >"$tmp/verify.log" 2>&1 ||
  { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
[ ! -s "$tmp/verify.log" ] || { cat "$tmp/verify.log"; fail "systemd-analyze verify warns"; }
unit=/lib/systemd/system/wxgate.service
for line in 'Type=notify' 'User=wxgate' 'Restart=on-failure' 'NoNewPrivileges=yes' \
            'ProtectSystem=strict' 'PrivateTmp=yes' 'CapabilityBoundingSet=' \
            'MemoryDenyWriteExecute=yes' \
            'ExecStartPre=/usr/bin/wxgate check -c /etc/wxgate/wxgate.lua' \
            'ExecReload=/usr/bin/wxgate check -c /etc/wxgate/wxgate.lua' \
            'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$line" "$unit" || fail "the unit has no $line"
done
systemd-analyze security --offline=true /lib/systemd/system/wxgate.service 2>/dev/null | tail -1 || true

step "the installed binary serves the installed config as the wxgate user"
sb_port=$(free_port)
gw_port=$(free_port)
admin_port=$(free_port)
chmod 755 "$tmp"
setpriv --reuid=wxgate --regid=wxgate --init-groups --no-new-privs \
  /usr/bin/wxgate sandbox -l "127.0.0.1:$sb_port" --workers 1 >"$tmp/sandbox.out" 2>"$tmp/sandbox.log" &
sb_pid=$!
sb=http://127.0.0.1:$sb_port
gw=http://127.0.0.1:$gw_port
cat >"$tmp/wxgate.lua" <<EOT
-- /etc/wxgate/wxgate.lua as installed, on free ports and against the sandbox.
local c = dofile("/etc/wxgate/wxgate.lua")
c.listen = "127.0.0.1:$gw_port"
c.admin_listen = "127.0.0.1:$admin_port"
c.public_url = "$gw"
c.env_file = "/etc/wxgate/secrets.env"
c.wechat = { open_base = "$sb", api_base = "$sb" }
c.campaigns.example.allow = { "$gw/" }
return c
EOT
chmod 644 "$tmp/wxgate.lua"
# The unit's ExecStartPre and ExecStart, as its User= with NoNewPrivileges=.
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/wxgate.service)
[ "$exec_start" = "/usr/bin/wxgate run -c /etc/wxgate/wxgate.lua" ] || fail "ExecStart=$exec_start"
setpriv --reuid=wxgate --regid=wxgate --init-groups --no-new-privs \
  /usr/bin/wxgate check -c "$tmp/wxgate.lua"
setpriv --reuid=wxgate --regid=wxgate --init-groups --no-new-privs \
  /usr/bin/wxgate run -c "$tmp/wxgate.lua" 2>"$tmp/gateway.log" &
gw_pid=$!
wait_http "$sb/_sandbox/apps" || { cat "$tmp/sandbox.log"; fail "the sandbox did not start"; }
wait_http "$gw/healthz" || { cat "$tmp/gateway.log"; fail "the gateway did not start"; }
[ "$(ps -o user= -p "$gw_pid")" = wxgate ] || fail "the gateway does not run as wxgate"

api_key=$(sed -n 's/^WXGATE_API_KEY=//p' /etc/wxgate/secrets.env)
/usr/bin/python3 "$here/login.py" "$gw" "$sb" "$api_key" || {
  cat "$tmp/gateway.log"; fail "login through the sandbox"; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "$gw/metrics")" = 404 ] || fail "public /metrics"
curl -fs "http://127.0.0.1:$admin_port/metrics" | grep -q '^wxgate_' || fail "admin /metrics"
kill -HUP "$gw_pid"
for _ in $(seq 100); do grep -q 'worker 0: reloaded' "$tmp/gateway.log" && break; sleep 0.1; done
grep -q 'worker 0: reloaded' "$tmp/gateway.log" || fail "SIGHUP did not reload"
kill -TERM "$gw_pid"
rc=0
wait "$gw_pid" || rc=$?
[ $rc = 0 ] || fail "the gateway exited $rc after SIGTERM"
grep -v '^{' "$tmp/gateway.log" && fail "log lines that are not JSON"
! grep -qF "$api_key" "$tmp/gateway.log" || fail "the API key is in the log"

step "the installed demo finds the installed examples"
/usr/bin/wxgate demo --help | grep -qF '/usr/bin/../share/wxgate/examples' ||
  fail "demo --help does not name the data directory"
demo_port=$(free_port)
(cd / && exec setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs \
   /usr/bin/wxgate demo -l "127.0.0.1:$demo_port" --workers 1 >"$tmp/demo.out" 2>"$tmp/demo.log") &
demo_pid=$!
wait_http "http://127.0.0.1:$demo_port/demo/" || { cat "$tmp/demo.log"; fail "wxgate demo"; }
kill -TERM "$demo_pid"
wait "$demo_pid" || fail "wxgate demo exited $? after SIGTERM"

kill -TERM "$sb_pid"
wait "$sb_pid" || fail "the sandbox exited $? after SIGTERM"

step "apt remove: the configuration stays"
apt-get remove -y -q wxgate >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; fail "apt remove"; }
[ ! -e /usr/bin/wxgate ] || fail "/usr/bin/wxgate is still there"
[ -f /etc/wxgate/wxgate.lua ] && [ -f /etc/wxgate/secrets.env ] || fail "remove took the config"

step "apt purge: nothing left but the wxgate user"
apt-get purge -y -q wxgate >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; fail "apt purge"; }
rm -f "$marker"
left=()
while read -r f; do
  [ "$f" = /. ] && continue
  # directories other packages share (/usr/bin, /etc) stay
  if [ -e "$f" ] && ! [ -d "$f" -a "$(dpkg -S "$f" 2>/dev/null | wc -l)" != 0 ]; then
    left+=("$f")
  fi
done <"$tmp/files"
[ -e /etc/wxgate ] && left+=(/etc/wxgate)
[ ${#left[@]} = 0 ] || fail "left after purge: ${left[*]}"
[ -z "$(dpkg-query -W -f='${Status}' wxgate 2>/dev/null | grep -v not-installed)" ] ||
  fail "dpkg still knows wxgate"
getent passwd wxgate >/dev/null || fail "the wxgate user is gone (Debian keeps system users)"
echo "scripts/package --test: all passed ($deb)"
