#!/usr/bin/env bash
# Installs PriceDaemon as a service. Idempotent: run it again to upgrade.
#
#   sudo ./install.sh                 publish, install, start under systemd
#   sudo ./install.sh --supervisor    the same, under supervisor instead of systemd
#   ./install.sh --prefix DIR         staged install into DIR (no user, no service started)
#   sudo ./install.sh --uninstall     stop and remove; keeps data and logs
#   sudo ./install.sh --uninstall --purge   ... and removes data, logs and config too
#
# Layout: /opt/pricedaemon (binaries), /etc/pricedaemon (config, never overwritten once edited),
# /var/lib/pricedaemon (data), /var/log/pricedaemon (logs).
set -euo pipefail

readonly service=pricedaemon
source_dir="$(cd "$(dirname "$0")" && pwd)"
readonly source_dir

prefix=""
mode=systemd
uninstall=0
purge=0

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --prefix=*) prefix="$(mkdir -p "${1#*=}" && cd "${1#*=}" && pwd)"; shift ;;
    --supervisor) mode=supervisor; shift ;;
    --systemd) mode=systemd; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
  esac
done

[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die "--purge only goes with --uninstall"

readonly app_dir="$prefix/opt/pricedaemon"
readonly etc_dir="$prefix/etc/pricedaemon"
readonly data_dir="$prefix/var/lib/pricedaemon"
readonly log_dir="$prefix/var/log/pricedaemon"
readonly unit_file="$prefix/etc/systemd/system/$service.service"
readonly supervisor_file="$prefix/etc/supervisor/conf.d/$service.conf"

# A staged install (--prefix) touches only files under the prefix: no user, no service manager.
staged() { [ -n "$prefix" ]; }
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

if ! staged && [ "$(id -u)" -ne 0 ]; then
  die "installing a service needs root: run it with sudo, or use --prefix DIR for a staged install"
fi

render() { sed "s|@PREFIX@|$prefix|g" "$1"; }

stop_service() {
  staged && return 0
  if has_systemd && systemctl list-unit-files "$service.service" >/dev/null 2>&1; then
    systemctl disable --now "$service.service" >/dev/null 2>&1 || true
  fi
  if command -v supervisorctl >/dev/null 2>&1 && [ -f "$supervisor_file" ]; then
    supervisorctl stop "$service" >/dev/null 2>&1 || true
  fi
}

if [ "$uninstall" -eq 1 ]; then
  stop_service
  rm -rf "$app_dir"
  rm -f "$unit_file" "$supervisor_file"
  if ! staged; then
    has_systemd && systemctl daemon-reload
    if command -v supervisorctl >/dev/null 2>&1; then
      supervisorctl update >/dev/null 2>&1 || true
    fi
  fi
  if [ "$purge" -eq 1 ]; then
    rm -rf "$etc_dir" "$data_dir" "$log_dir"
    if ! staged && id "$service" >/dev/null 2>&1; then
      userdel "$service" || true
    fi
    say "removed PriceDaemon with its data, logs and config"
  else
    say "removed PriceDaemon; kept $data_dir, $log_dir and $etc_dir (--purge removes them)"
  fi
  exit 0
fi

command -v dotnet >/dev/null 2>&1 || die "the .NET 10 SDK is needed to publish (dotnet not found on PATH)"
dotnet --list-sdks | grep -q '^10\.' || die "the .NET 10 SDK is needed to publish (found: $(dotnet --list-sdks | tr '\n' ' '))"

if ! staged; then
  if [ "$mode" = systemd ] && ! has_systemd; then
    die "systemd is not running here; use --supervisor, or --prefix DIR for a staged install"
  fi
  if [ "$mode" = supervisor ] && ! command -v supervisorctl >/dev/null 2>&1; then
    die "supervisor is not installed (apt-get install supervisor), or use systemd"
  fi
fi

# The port from the installed (or default) config must be free unless our own service holds it.
port_of_config() {
  local file="$etc_dir/appsettings.json"
  [ -f "$file" ] || file="$source_dir/config/appsettings.production.json"
  grep -o '"Urls"[^,}]*' "$file" | grep -o ':[0-9]\+' | tail -1 | tr -d ':'
}
if ! staged && command -v ss >/dev/null 2>&1; then
  port="$(port_of_config)"
  if [ -n "$port" ] && ss -ltnH "sport = :$port" | grep -q .; then
    if ! { has_systemd && systemctl is-active --quiet "$service.service"; } && ! pgrep -u "$service" -f PriceDaemon.dll >/dev/null 2>&1; then
      die "port $port is already in use by another program (see: ss -ltnp 'sport = :$port'); change Urls in $etc_dir/appsettings.json"
    fi
  fi
fi

say "publishing Release build"
publish_dir="$(mktemp -d)"
trap 'rm -rf "$publish_dir"' EXIT
dotnet publish "$source_dir/PriceDaemon/PriceDaemon.csproj" -c Release -o "$publish_dir" --nologo -v quiet >/dev/null \
  || die "dotnet publish failed; run it by hand to see why: dotnet publish PriceDaemon -c Release"

if ! staged && ! id "$service" >/dev/null 2>&1; then
  useradd --system --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin "$service"
  say "created system user $service"
fi

stop_service
mkdir -p "$app_dir" "$etc_dir" "$data_dir" "$log_dir"
# Replace binaries whole, so files removed from a release do not linger.
rm -rf "$app_dir.new"
cp -R "$publish_dir" "$app_dir.new"
cp "$source_dir/README.md" "$app_dir.new/"
rm -rf "$app_dir"
mv "$app_dir.new" "$app_dir"

# Config: install once; afterwards never overwrite an edited file, leave the new default beside it.
rendered_config="$(render "$source_dir/config/appsettings.production.json")"
if [ ! -f "$etc_dir/appsettings.json" ]; then
  printf '%s\n' "$rendered_config" > "$etc_dir/appsettings.json"
  say "installed $etc_dir/appsettings.json"
elif [ "$(cat "$etc_dir/appsettings.json")" != "$rendered_config" ]; then
  printf '%s\n' "$rendered_config" > "$etc_dir/appsettings.json.new"
  say "kept your edited $etc_dir/appsettings.json; the new default is appsettings.json.new"
fi

if ! staged; then
  chown -R "$service:$service" "$data_dir" "$log_dir"
  chmod 750 "$data_dir" "$log_dir"
fi

if [ "$mode" = systemd ]; then
  mkdir -p "$(dirname "$unit_file")"
  render "$source_dir/config/systemd/$service.service" > "$unit_file"
  if ! staged; then
    systemctl daemon-reload
    systemctl enable --now "$service.service"
    say "started: systemctl status $service; journalctl -u $service -f"
  fi
else
  mkdir -p "$(dirname "$supervisor_file")"
  render "$source_dir/config/supervisor/$service.conf" > "$supervisor_file"
  if ! staged; then
    supervisorctl update
    supervisorctl start "$service" >/dev/null 2>&1 || true
    say "started: supervisorctl status $service"
  fi
fi

say "installed PriceDaemon into ${prefix:-/} ($mode)"
