"""The dds backend: the LowState inbox (CRC check, first-state wait) here, then the real DDS path over
CycloneDDS on `lo` against a fake G1 in another process that uses unitree_sdk2py's own CRC helper.

The DDS stack (requirements-dds.txt: cyclonedds built against Debian's cyclonedds-dev, unitree_sdk2py)
is pip-installed once into data/cache/dds with --target, never into .venv, and every DDS part runs in a
subprocess with it on PYTHONPATH (unitree_sdk2py also allows one DDS domain per process). Those tests
skip, saying why, where cyclonedds-dev is missing or no registry is reachable to build the binding.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from deploy.backends.dds import CMD_TOPIC, STATE_TOPIC, LowStateInbox, fill_lowcmd, lowstate_crc
from deploy.lowcmd import N_SLOTS, LowCmd, crc32_core
from deploy.runtime import DeployError, build_lowcmd
from robomirror import g1_contract as g1

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "data" / "cache" / "dds"
REQUIREMENTS = REPO / "requirements-dds.txt"
TICK0 = 0xFFFF_0000  # u32 ticks past 2^31: a signed 32-bit field would flip them
MODE_MACHINE = 200  # past 127: a signed 8-bit field would flip it
SILENT_S = 0.5  # [s] the fake robot stays silent after the controller is up: read_state must wait it out
NO_REGISTRY = ("No matching distribution", "Could not find a version", "NewConnectionError", "Max retries exceeded",
               "Network is unreachable", "Temporary failure in name resolution")


# ----------------------------------------------------------------------- messages (fake robot and unit tests)
def robot_state(msg, tick: int):
    """Fill an hg LowState_ (or a namespace shaped like one) with values that exercise every field's type:
    u32 past 2^31, u8 past 127, negative i16; floats exact in float32. Returns msg."""
    msg.version, msg.mode_pr, msg.mode_machine, msg.tick = [1, 0xFFFF_FFFF], 1, MODE_MACHINE, tick
    imu = msg.imu_state
    imu.quaternion, imu.gyroscope = [0.5, 0.5, -0.5, 0.5], [0.25, -0.5, 0.125]
    imu.accelerometer, imu.rpy, imu.temperature = [0.0, 0.0, 9.75], [0.1, -0.2, 0.3], -12
    for i, m in enumerate(msg.motor_state):
        m.mode, m.q, m.dq, m.ddq, m.tau_est = 1, motor_q(i), -0.125 * i, 0.0, 0.5 * i
        m.temperature, m.vol, m.sensor = [30 + i, -5], 24.5, [i, 0xFFFF_FFFF - i]
        m.motorstate, m.reserve = i, [0, 0, 0, 0xFFFF_FFFF]
    msg.wireless_remote, msg.reserve = [(7 * i) % 256 for i in range(40)], [1, 2, 3, 0xFFFF_FFFF]
    msg.crc = 0
    return msg


def motor_q(i: int) -> float:
    return 0.0625 * i - 1.0  # [rad]


def fake_lowstate(tick: int, good_crc: bool = True) -> SimpleNamespace:
    motor = dict(mode=0, q=0.0, dq=0.0, ddq=0.0, tau_est=0.0, temperature=[0, 0], vol=0.0, sensor=[0, 0],
                 motorstate=0, reserve=[0] * 4)
    msg = SimpleNamespace(imu_state=SimpleNamespace(), motor_state=[SimpleNamespace(**motor) for _ in range(N_SLOTS)])
    robot_state(msg, tick)
    msg.crc = lowstate_crc(msg) ^ (0 if good_crc else 1)
    return msg


def random_lowcmd(seed: int) -> LowCmd:
    rng = np.random.default_rng(seed)
    c = LowCmd(mode_pr=int(rng.integers(0, 2)), mode_machine=int(rng.integers(0, 256)))
    c.mode[:] = rng.integers(0, 2, N_SLOTS)
    for a in (c.q, c.dq, c.tau, c.kp, c.kd):
        a[:] = rng.normal(size=N_SLOTS) * 10
    return c


# -------------------------------------------------------------------------------- without a DDS stack
def test_inbox_drops_bad_crc_and_keeps_the_last_good_state():
    inbox = LowStateInbox()
    inbox.put(fake_lowstate(0xFFFF_FFFF))
    inbox.put(fake_lowstate(5, good_crc=False))
    s = inbox.get(wait_s=0.0)
    assert s.tick == 0xFFFF_FFFF and s.mode_machine == MODE_MACHINE and inbox.crc_errors == 1
    assert np.array_equal(s.q, [motor_q(i) for i in range(N_SLOTS)]) and s.q.shape == (N_SLOTS,)
    assert np.array_equal(s.imu_quat_wxyz, [0.5, 0.5, -0.5, 0.5])


def test_inbox_never_raises_on_a_malformed_sample():
    inbox = LowStateInbox()
    inbox.put(object())
    short = fake_lowstate(1)
    short.motor_state = short.motor_state[:3]
    inbox.put(short)
    assert inbox.decode_errors + inbox.crc_errors == 2 and inbox.get(wait_s=0.0) is None


def test_inbox_waits_for_the_first_state_up_to_wait_s():
    inbox = LowStateInbox()
    t0 = time.monotonic()
    assert inbox.get(wait_s=0.2) is None
    assert 0.2 <= time.monotonic() - t0 < 1.0
    threading.Timer(0.1, inbox.put, [fake_lowstate(7)]).start()
    assert inbox.get(wait_s=10.0).tick == 7


def test_lowcmd_message_carries_the_crc_of_the_packed_bytes():
    cmd = random_lowcmd(0)
    cmd.mode_machine = MODE_MACHINE
    motor = dict(mode=0, q=0.0, dq=0.0, tau=0.0, kp=0.0, kd=0.0, reserve=0)
    msg = fill_lowcmd(SimpleNamespace(motor_cmd=[SimpleNamespace(**motor) for _ in range(N_SLOTS)]), cmd)
    assert msg.crc == crc32_core(cmd.pack()[:-4]) and msg.mode_machine == MODE_MACHINE
    cmd.kp[3] = np.nan
    with pytest.raises(ValueError, match="unset"):
        fill_lowcmd(msg, cmd)


def test_missing_dds_stack_is_a_deploy_error_naming_the_requirements(monkeypatch):
    from deploy.backends.dds import DdsBackend

    monkeypatch.setitem(sys.modules, "unitree_sdk2py", None)
    with pytest.raises(DeployError, match="requirements-dds.txt"):
        DdsBackend()


# ----------------------------------------------------------------------------- the DDS stack, cached
def _ddsc_libdir() -> Path | None:
    """Where Debian's cyclonedds-dev put libddsc.so (multiarch), None when it is not installed."""
    if not Path("/usr/include/dds/dds.h").exists():
        return None
    found = [*sorted(Path("/usr/lib").glob("*/libddsc.so")), Path("/usr/lib/libddsc.so")]
    return next((p.parent for p in found if p.exists()), None)


def _build_dds_site(site: Path, libdir: Path) -> None:
    """pip install --no-deps --target `site` -r requirements-dds.txt, with the CYCLONEDDS_HOME recipe that
    file describes (a prefix of symlinks: Debian's libddsc.so is not under /usr/lib)."""
    prefix = CACHE / "prefix"
    prefix.mkdir(parents=True, exist_ok=True)
    for name, target in (("include", Path("/usr/include")), ("bin", Path("/usr/bin")), ("lib", libdir)):
        if not (prefix / name).is_symlink():
            (prefix / name).symlink_to(target)
    tmp = CACHE / f"{site.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "--target", str(tmp), "-r", str(REQUIREMENTS)],
                       env={**os.environ, "CYCLONEDDS_HOME": str(prefix)}, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        out = (r.stdout + r.stderr).strip()
        if any(s in out for s in NO_REGISTRY):
            pytest.skip(f"cannot build the DDS stack, no registry reachable: {out.splitlines()[-1]}")
        pytest.fail(f"pip install -r requirements-dds.txt against cyclonedds-dev failed:\n{out[-3000:]}")
    try:
        tmp.rename(site)
    except OSError:  # a concurrent session finished first: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def dds_env() -> dict[str, str]:
    """Environment for a subprocess that imports cyclonedds and unitree_sdk2py (built once, cached)."""
    libdir = _ddsc_libdir()
    if libdir is None:
        pytest.skip("Debian's cyclonedds-dev is not installed (.ci/run installs it: apt-get install cyclonedds-dev)")
    pins = [ln for ln in REQUIREMENTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    key = hashlib.sha256("\n".join([*pins, sys.version, str(libdir)]).encode()).hexdigest()[:12]
    site = CACHE / f"site-{key}"
    if not (site / "unitree_sdk2py").is_dir():
        _build_dds_site(site, libdir)
    env = {k: v for k, v in os.environ.items() if k not in ("CYCLONEDDS_HOME", "CYCLONEDDS_URI")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def _python(env: dict[str, str], call: str, timeout_s: float = 60) -> dict:
    """Run `tests.deploy.test_dds.<call>` in a subprocess; its last JSON line."""
    r = subprocess.run([sys.executable, "-c", f"import tests.deploy.test_dds as t; t.{call}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=timeout_s)
    assert r.returncode == 0, f"{call} exited {r.returncode}:\n{r.stderr[-3000:]}"
    return _last_json(r.stdout)


def _last_json(stdout: str, stderr: str = "") -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no JSON line in:\n{stdout[-2000:]}\n{stderr[-2000:]}"
    return json.loads(lines[-1])


def _domain() -> int:
    return random.SystemRandom().randrange(1, 233)  # away from other sessions' tests on this host


# ------------------------------------------------------------- run in subprocesses with the DDS stack
def crc_against_unitree() -> None:
    """Our CRCs and unitree_sdk2py's CRC().Crc on random LowCmds and on LowStates (after a CDR round trip)."""
    from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowCmd_, unitree_hg_msg_dds__LowState_
    from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_
    from unitree_sdk2py.utils.crc import CRC

    from deploy.backends.dds import to_lowstate

    crc, cmds, states = CRC(), [], []
    for seed in range(5):
        c = random_lowcmd(seed)
        wire = LowCmd_.deserialize(fill_lowcmd(unitree_hg_msg_dds__LowCmd_(), c).serialize())
        cmds.append([crc32_core(c.pack()[:-4]), wire.crc, crc.Crc(wire)])
    for tick in (0, 2**31, 0xFFFF_FFFF):
        msg = robot_state(unitree_hg_msg_dds__LowState_(), tick)
        msg.crc = crc.Crc(msg)
        wire = LowState_.deserialize(msg.serialize())
        s = to_lowstate(wire)
        states.append([lowstate_crc(wire), wire.crc, s.tick, s.mode_machine])
    print(json.dumps({"cmds": cmds, "states": states}))


def backend_times_out(domain: int, wait_s: float) -> None:
    """A wrong interface name, then read_state on a domain nobody publishes on."""
    from deploy.backends.dds import DdsBackend

    out = {}
    try:
        DdsBackend("nosuch0", domain)
    except DeployError as e:
        out["bad_interface"] = str(e)
    b = DdsBackend("lo", domain, wait_s=wait_s)
    t0 = time.monotonic()
    try:
        b.read_state()
    except DeployError as e:
        out.update(error=str(e), waited_s=time.monotonic() - t0)
    print(json.dumps(out))


def fake_robot(domain: int, ready: str) -> None:
    """A G1 on `lo`: SILENT_S after the controller touched `ready` it publishes hg LowState_ at 100 Hz with
    Unitree's CRC; once the first LowCmd arrives it prints it (with Unitree's CRC of it) and sends only bad CRCs."""
    from unitree_sdk2py.core.channel import ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber
    from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowState_
    from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_
    from unitree_sdk2py.utils.crc import CRC

    ChannelFactoryInitialize(domain, "lo")
    cmds: queue.Queue = queue.Queue()
    sub = ChannelSubscriber(CMD_TOPIC, LowCmd_)
    sub.Init(cmds.put, 10)
    pub = ChannelPublisher(STATE_TOPIC, LowState_)
    pub.Init()
    crc, tick, last_good_tick, corrupt = CRC(), TICK0, None, False
    while not Path(ready).exists():
        time.sleep(0.01)
    time.sleep(SILENT_S)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = robot_state(unitree_hg_msg_dds__LowState_(), tick)
        msg.crc = crc.Crc(msg) ^ (1 if corrupt else 0)
        last_good_tick = last_good_tick if corrupt else tick
        pub.Write(msg)
        tick += 1
        if not corrupt and not cmds.empty():
            m = cmds.get()
            corrupt = True
            motors = {k: [getattr(mc, k) for mc in m.motor_cmd] for k in ("mode", "q", "dq", "tau", "kp", "kd")}
            print(json.dumps({"last_good_tick": last_good_tick, "crc": m.crc, "crc_unitree": crc.Crc(m),
                              "mode_pr": m.mode_pr, "mode_machine": m.mode_machine, **motors}), flush=True)
        time.sleep(0.01)


def drive_backend(domain: int, ready: str) -> None:
    """The controller side: first state (waited for), a build_lowcmd command sent until bad CRCs come,
    then the tick read_state returns while only bad states arrive."""
    from deploy.backends.dds import DdsBackend

    b = DdsBackend("lo", domain, wait_s=20.0)
    Path(ready).touch()
    t0 = time.monotonic()
    s = b.read_state()
    out = {"waited_s": time.monotonic() - t0, "tick": s.tick, "mode_machine": s.mode_machine,
           "q": s.q.tolist(), "dq": s.dq.tolist(), "tau_est": s.tau_est.tolist(),
           "quat": s.imu_quat_wxyz.tolist(), "gyro": s.imu_gyro_b.tolist()}
    cmd = build_lowcmd(g1.DEFAULT_JOINT_POS_RAD, g1.KP, g1.KD, mode_machine=s.mode_machine)
    deadline = time.monotonic() + 20
    while b.crc_errors < 5 and time.monotonic() < deadline:
        b.send(cmd)
        time.sleep(0.02)
    tick_a, errors_a = b.read_state().tick, b.crc_errors
    time.sleep(0.2)
    out.update(tick_a=tick_a, errors_a=errors_a, tick_b=b.read_state().tick, errors_b=b.crc_errors)
    b.close()
    b.close()  # the runtime's fault paths may close twice
    print(json.dumps(out))


# -------------------------------------------------------------------------------------- over DDS
def test_crcs_equal_unitree_sdk2py_on_lowcmd_and_lowstate(dds_env):
    r = _python(dds_env, "crc_against_unitree()")
    for ours, on_wire, unitree in r["cmds"]:
        assert ours == on_wire == unitree
    assert [ours == unitree for ours, unitree, _, _ in r["states"]] == [True] * 3
    assert [(tick, mm) for _, _, tick, mm in r["states"]] == [(t, MODE_MACHINE) for t in (0, 2**31, 0xFFFF_FFFF)]


def test_first_state_wait_times_out_with_what_to_check(dds_env):
    r = _python(dds_env, f"backend_times_out({_domain()}, 0.5)")
    assert "'nosuch0'" in r["bad_interface"] and "'lo'" in r["bad_interface"]
    assert "error" in r, "read_state returned a state on a domain nobody publishes on"
    assert 0.5 <= r["waited_s"] < 3.0
    for part in ("rt/lowstate", "'lo'", "0.5 s", "interface"):
        assert part in r["error"]


def test_state_round_trip_bad_crc_dropped_and_lowcmd_verified_by_the_robot(dds_env, tmp_path):
    domain, ready = _domain(), str(tmp_path / "controller-ready")
    call = f"import tests.deploy.test_dds as t; t.fake_robot({domain}, {ready!r})"
    robot = subprocess.Popen([sys.executable, "-c", call],
                             cwd=REPO, env=dds_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        c = _python(dds_env, f"drive_backend({domain}, {ready!r})")
    finally:
        robot.terminate()
        robot_out, robot_err = robot.communicate(timeout=10)
    r = _last_json(robot_out, robot_err)

    # the first read waited for the robot instead of failing
    assert c["waited_s"] >= SILENT_S
    # state round trip: unsigned fields as sent, floats as float32
    assert c["tick"] >= TICK0 > 2**31 and c["mode_machine"] == MODE_MACHINE
    assert np.array_equal(c["q"], [motor_q(i) for i in range(N_SLOTS)])
    assert np.array_equal(c["dq"], -0.125 * np.arange(N_SLOTS))
    assert np.array_equal(c["tau_est"], 0.5 * np.arange(N_SLOTS))
    assert c["quat"] == [0.5, 0.5, -0.5, 0.5] and c["gyro"] == [0.25, -0.5, 0.125]
    # bad CRCs: dropped and counted; read_state keeps the last good state, so the tick stands still
    assert c["errors_b"] > c["errors_a"] >= 5
    assert c["tick_a"] == c["tick_b"] <= r["last_good_tick"]
    # the LowCmd: Unitree's CRC helper verifies it, values as build_lowcmd made them
    want = build_lowcmd(g1.DEFAULT_JOINT_POS_RAD, g1.KP, g1.KD, mode_machine=MODE_MACHINE)
    assert r["crc"] == r["crc_unitree"] == crc32_core(want.pack()[:-4])
    assert r["mode_machine"] == MODE_MACHINE and r["mode_pr"] == want.mode_pr and r["mode"] == want.mode.tolist()
    for k in ("q", "dq", "tau", "kp", "kd"):
        assert np.array_equal(np.float32(r[k]), np.float32(getattr(want, k))), k
