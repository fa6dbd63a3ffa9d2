#!/usr/bin/env bash
# Install edged as a systemd service: a virtual environment under /opt/edged, the
# unit, a config under /etc/edged, the edged system user. Safe to run again (an
# update): it upgrades the package and the unit, never overwrites your config.
#
#   sudo tools/install.sh                 # install or update, do not start
#   sudo tools/install.sh --enable --start
#   tools/install.sh --dry-run            # print what it would do, change nothing
#
# Options:
#   --dry-run            print every step, change nothing (no root needed)
#   --prefix DIR         virtual environment (default /opt/edged)
#   --config-dir DIR     configuration directory (default /etc/edged)
#   --unit-dir DIR       systemd unit directory (default /etc/systemd/system)
#   --credstore DIR      secrets for LoadCredential= (default /etc/credstore)
#   --user NAME          service user and group (default edged)
#   --python PYTHON      interpreter for the venv, >= 3.11 (default python3)
#   --source PATH        what pip installs: a source tree or wheel (default: this repo)
#   --config FILE        config template for a first install
#                        (default configs/example-factory.yaml)
#   --enable             systemctl enable edged
#   --start              (re)start edged now (after check-config passed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dry_run=0
prefix=/opt/edged
config_dir=/etc/edged
unit_dir=/etc/systemd/system
credstore=/etc/credstore
user=edged
python=python3
source_path="$here"
config_template="$here/configs/example-factory.yaml"
enable=0
start=0

die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --prefix) prefix="${2:?--prefix needs a directory}"; shift ;;
        --config-dir) config_dir="${2:?--config-dir needs a directory}"; shift ;;
        --unit-dir) unit_dir="${2:?--unit-dir needs a directory}"; shift ;;
        --credstore) credstore="${2:?--credstore needs a directory}"; shift ;;
        --user) user="${2:?--user needs a name}"; shift ;;
        --python) python="${2:?--python needs an interpreter}"; shift ;;
        --source) source_path="${2:?--source needs a path}"; shift ;;
        --config) config_template="${2:?--config needs a file}"; shift ;;
        --enable) enable=1 ;;
        --start) start=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option: expected one of --dry-run --prefix --config-dir --unit-dir --credstore --user --python --source --config --enable --start, got '$1'" ;;
    esac
    shift
done

# Every change goes through run: printed always, executed unless --dry-run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [ "$dry_run" -eq 0 ]; then
        "$@"
    fi
}
note() { echo "# $*"; }

if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "expected to run as root (or with --dry-run), got uid $(id -u)"
fi
[ -e "$source_path" ] || die "--source: expected a source tree or wheel, got '$source_path'"
[ -f "$config_template" ] || die "--config: expected a YAML file, got '$config_template'"
[ -f "$here/systemd/edged.service" ] || die "expected systemd/edged.service next to tools/"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    die "--python: expected Python >= 3.11, got '$python' ($("$python" --version 2>&1 || echo missing))"
fi

note "edged install: prefix=$prefix config=$config_dir unit=$unit_dir user=$user dry_run=$dry_run"

# 1. The service user, and the groups that grant camera access.
for group in video plugdev; do
    if ! getent group "$group" >/dev/null; then
        run groupadd --system "$group"
    fi
done
if ! getent group "$user" >/dev/null; then
    run groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
    run useradd --system --gid "$user" --home-dir "/var/lib/$user" --no-create-home \
        --shell /usr/sbin/nologin --comment "edged camera inspection daemon" "$user"
else
    note "user $user exists"
fi

# 2. The virtual environment and the package (an upgrade when it exists).
if [ ! -x "$prefix/bin/python" ]; then
    run "$python" -m venv "$prefix"
else
    note "venv $prefix exists: upgrading edged in it"
fi
run "$prefix/bin/pip" install --quiet --upgrade --no-cache-dir "$source_path"

# 3. Configuration: installed once, never overwritten.
run install -d -m 0755 -o root -g root "$config_dir"
if [ ! -e "$config_dir/edged.yaml" ]; then
    run install -m 0640 -o root -g "$user" "$config_template" "$config_dir/edged.yaml"
    note "adapt $config_dir/edged.yaml to this line (cameras, recipes, broker)"
else
    note "keeping $config_dir/edged.yaml"
fi
# Secrets for LoadCredential= (root only): edged.mqtt-password, edged.api-key,
# edged.command-secret.
run install -d -m 0700 -o root -g root "$credstore"

# 4. The unit (its paths follow --prefix and --config-dir).
unit_tmp="$(mktemp)"
trap 'rm -f "$unit_tmp"' EXIT
unit_edits=(-e "s#/opt/edged/#$prefix/#g")
if [ "$config_dir" != /etc/edged ]; then
    unit_edits+=(-e "s#%E/edged/#$config_dir/#g")
fi
sed "${unit_edits[@]}" "$here/systemd/edged.service" >"$unit_tmp"
if [ -f "$unit_dir/edged.service" ] && cmp -s "$unit_tmp" "$unit_dir/edged.service"; then
    note "unit $unit_dir/edged.service is up to date"
else
    run install -D -m 0644 "$unit_tmp" "$unit_dir/edged.service"
fi
systemd_running=0
if [ -d /run/systemd/system ]; then
    systemd_running=1
    run systemctl daemon-reload
else
    note "systemd is not running here: skipping daemon-reload/enable/start"
fi

# 5. Validate the config with the installed edged (as ExecStartPre= will).
config_ok=1
if [ "$dry_run" -eq 1 ]; then
    run "$prefix/bin/edged" check-config --config "$config_dir/edged.yaml"
elif ! run "$prefix/bin/edged" check-config --config "$config_dir/edged.yaml"; then
    config_ok=0
    note "the config has errors: fix $config_dir/edged.yaml before starting edged"
fi

if [ "$systemd_running" -eq 1 ]; then
    if [ "$enable" -eq 1 ]; then
        run systemctl enable edged.service
    fi
    if [ "$start" -eq 1 ]; then
        [ "$config_ok" -eq 1 ] || die "not starting: the config is invalid"
        run systemctl restart edged.service
    fi
fi
note "done. Status: systemctl status edged; logs: journalctl -u edged -f"
