"""Motion for the 15 Human3.6M actions, as rotations of the SMPL joint tree.

Every action is built from anatomical angle tracks (hip flexion, knee flexion, spine bend, ...)
and hand targets that a two-bone IK turns into shoulder and elbow rotations. Tracks are sums of
low-frequency sinusoids, periodic gait cycles and C2 smooth transitions, so the motion is smooth
by construction; each clip adds its own habits (:func:`_variation`), and every angle is then
squeezed smoothly into :data:`JOINT_LIMITS_DEG`. The rotations drive both the rigid skeleton
that gives the joints (:mod:`.skeleton`) and the fitted SMPL-format body. What each action does:
docs/synthetic.md.

Conventions (SMPL rest pose: y up, the body faces +z, its left is +x):
* hip flexion (thigh forward) is a negative rotation about x; knee flexion (shank backward) a
  positive one, so a knee's axis-angle is always (θ ≥ 0, 0, 0): it never hyperextends;
* ankle plantar-flexion (toes down) is positive about x;
* elbow flexion is about the elbow's y axis: negative for the left arm, positive for the right
  (the forearm swings towards +z in the rest pose); an elbow's axis-angle is (0, ∓φ, 0), φ ≥ 0;
* spine/neck forward bend is positive about x, twist about y, lateral bend about z.
The global orientation composes SMPL's y-up body into Human3.6M's z-up world,
``R_z(heading) · R_x(90°) · pelvis-tilt``, so at heading 0 the body faces world −y.

Longer than most modules on purpose: the 15 action generators share their helpers and joint
limits, and split files would scatter one kinematic model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict

import numpy as np
from scipy.spatial.transform import Rotation

from lib.geometry.skeleton import ACTIONS

FPS = 50
# Half-extent (x, y) of where in the capture volume a clip starts, metres from the capture
# centre: the distance to each camera, and so the body's size in the image, varies per clip.
PLACEMENT_SPREAD_M = np.array([0.9, 1.4])
# Range (metres) of the height of a clip's floor above the capture's floor (version 9): a stage,
# a platform, raised ground, or, what looks the same to the cameras, cameras mounted lower or
# higher. Up to version 8 every clip stood on the floor, and a model trained on that learned
# where in the image a body of a given pose appears; a person standing 20-30 cm higher (CMU 03
# walks on raised ground) was then lifted with the legs too straight and the feet too low.
GROUND_HEIGHT_M = (-0.4, 0.4)
SIDES = ("L", "R")
LATERAL = {"L": 1.0, "R": -1.0}   # sign of the body's x axis on each side

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand")
_J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
_SIDE_JOINT = {(s, part): _J[f"{'left' if s == 'L' else 'right'}_{part}"]
               for s in SIDES for part in ("hip", "knee", "ankle", "collar", "shoulder",
                                           "elbow", "wrist")}

# Anatomical limits, degrees (min, max), applied to every track. Sources: typical ranges of
# motion of healthy adults (e.g. AAOS tables), narrowed to what everyday H36M actions use.
JOINT_LIMITS_DEG = {
    "knee_flex": (0.0, 150.0),      # knees only flex
    "elbow_flex": (5.0, 150.0),     # elbows only flex (IK keeps a small bend)
    "hip_flex": (-20.0, 125.0),     # negative: extension
    "hip_abd": (-15.0, 45.0),       # negative: adduction
    "hip_rot": (-35.0, 35.0),
    "ankle_flex": (-30.0, 45.0),    # negative: dorsiflexion
    "spine_flex": (-20.0, 70.0),    # whole spine, spread over spine1..3
    "spine_lat": (-25.0, 25.0),
    "spine_twist": (-45.0, 45.0),
    "neck_flex": (-25.0, 45.0),
    "neck_twist": (-60.0, 60.0),
    "head_flex": (-25.0, 30.0),
    "head_lat": (-20.0, 20.0),
    "pelvis_tilt": (-15.0, 60.0),   # forward tilt of the whole body about the pelvis
    "pelvis_list": (-10.0, 10.0),
    "wrist_flex": (-50.0, 50.0),
}
# Per-clip ranges (deg) of Style.stance, from feet nearly together to wide apart (0: each ankle
# straight below its hip; a fixed 4 deg, as before version 6, put every standing subject's
# knees 6 cm outside the hips, where real capture has them about as wide as the hips or
# narrower), and of Style.step_width.
STANCE_ABDUCTION_DEG = (-3.0, 6.0)
GAIT_ABDUCTION_DEG = (-4.0, 0.0)
# Per-clip range (deg) of Style.arm_swing_centre: the walking upper arm's mean angle ahead of
# the chest's line (negative: behind it). Walking people swing the arm further back than
# forward; the real walkers of the calibration (CMU 02 on level ground, CMU 03 on rough ground)
# hold the upper arm 2-9 deg behind the chest's line (median per clip, the calibration's
# upper_arm_carriage), and up to version 6 every synthetic gait swung it about the line itself.
ARM_SWING_CENTRE_DEG = (-12.0, -2.0)
# Per-clip range (deg) of Style.soft_knees: how far a standing clip holds the knees bent beyond
# the 4 deg of quiet standing (version 9), the hips bent by half as much so that thigh and
# shank lean alike and the feet stay flat. People stand on anything from locked to soft knees;
# up to version 8 every standing clip held 4 deg (the standing actions' knees: median 5-6 deg,
# 90th percentile 5-13, weight shifts included), which taught the models that a leg seen nearly
# straight in 2D is straight.
SOFT_KNEES_DEG = (0.0, 15.0)
_SCALAR_TRACKS = ("pelvis_tilt", "pelvis_list", "spine_flex", "spine_lat", "spine_twist",
                  "neck_flex", "neck_twist", "head_flex", "head_lat")
_SIDED_TRACKS = ("hip_flex", "hip_abd", "hip_rot", "knee_flex", "ankle_flex", "wrist_flex")


# ----------------------------------------------------------------------------- rotations
def _rot(axis: int, angle) -> np.ndarray:
    """(N,) angles -> (N, 3, 3) rotations about a coordinate axis."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def rot_x(a):
    return _rot(0, a)


def rot_y(a):
    return _rot(1, a)


def rot_z(a):
    return _rot(2, a)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    shape = R.shape[:-2]
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(shape + (3,))


def _unit(v, eps=1e-9):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


# ----------------------------------------------------------------------------- time signals
def smooth_noise(rng, t, n_terms=3, f_min=0.05, f_max=0.4):
    """Sum of a few random low-frequency sinusoids, scaled into [-1, 1]."""
    freqs = rng.uniform(f_min, f_max, n_terms)
    phases = rng.uniform(0, 2 * np.pi, n_terms)
    amps = rng.uniform(0.5, 1.0, n_terms)
    sig = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None])).sum(0)
    return sig / amps.sum()


def smootherstep(x):
    """C2-continuous 0 -> 1 ramp on [0, 1] (Perlin's 6x^5 - 15x^4 + 10x^3)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def pulses(t, period, rise, hold, phase):
    """Periodic smooth bumps 0 -> 1 (hold) -> 0, one per period, starting at ``phase`` seconds.

    A bump longer than the period (``2 rise + hold``; a fast subject's tempo shortens the
    period) is fitted into it, the hold shortened first, then the ramps: cut off by the next
    period's start instead, it would drop from the hold to 0 in one frame (version 7 had such
    jumps of up to 39 cm in a wrist's path).
    """
    if period <= 0:
        raise ValueError(f"pulses: period must be > 0, got {period}")
    hold = min(hold, max(period - 2 * rise, 0.0))
    rise = min(rise, period / 2)
    u = np.mod(t - phase, period)
    up = smootherstep(u / rise)
    down = 1.0 - smootherstep((u - rise - hold) / rise)
    return np.minimum(up, down)


# ----------------------------------------------------------------------------- skeleton
@dataclass
class RestSkeleton:
    """Bone lengths and landmarks of one subject's rest pose (SMPL frame, metres)."""
    joints: np.ndarray   # (24, 3) rest joints of the shaped model

    def shoulder(self, side):
        return self.joints[_SIDE_JOINT[(side, "shoulder")]]

    def upper_arm(self, side):
        j = self.joints
        return float(np.linalg.norm(j[_SIDE_JOINT[(side, "elbow")]] - self.shoulder(side)))

    def forearm(self, side):
        j = self.joints
        return float(np.linalg.norm(j[_SIDE_JOINT[(side, "wrist")]] -
                                    j[_SIDE_JOINT[(side, "elbow")]]))

    def arm_length(self, side):
        return self.upper_arm(side) + self.forearm(side)

    @property
    def leg_length(self) -> float:
        j = self.joints
        return float(np.linalg.norm(j[_J["left_knee"]] - j[_J["left_hip"]]) +
                     np.linalg.norm(j[_J["left_ankle"]] - j[_J["left_knee"]]))

    def rest_direction(self, side, a="shoulder", b="elbow"):
        j = self.joints
        return _unit(j[_SIDE_JOINT[(side, b)]] - j[_SIDE_JOINT[(side, a)]])

    def from_head(self, side, lateral, up, forward):
        """A point near the head, relative to the ``side`` shoulder (lateral > 0 = that side)."""
        p = self.joints[_J["head"]] + np.array([LATERAL[side] * lateral, up, forward])
        return p - self.shoulder(side)

    def from_shoulder(self, side, lateral, up, forward):
        return np.array([LATERAL[side] * lateral, up, forward])

    def from_pelvis(self, side, lateral, up, forward):
        p = self.joints[_J["pelvis"]] + np.array([LATERAL[side] * lateral, up, forward])
        return p - self.shoulder(side)


# ----------------------------------------------------------------------------- tracks
@dataclass
class Style:
    """Per-subject manner of moving."""
    speed: float = 1.0        # gait and gesture tempo multiplier
    amplitude: float = 1.0    # gesture and swing amplitude multiplier
    hand: str = "R"           # dominant hand
    posture: float = 0.0      # habitual forward lean, radians
    # the hip's frontal angle (radians, negative: adduction) standing and, on level ground,
    # walking: how far apart the feet are (for_clip draws them per clip; default: the middle)
    stance: float = float(np.deg2rad(np.mean(STANCE_ABDUCTION_DEG)))
    step_width: float = float(np.deg2rad(np.mean(GAIT_ABDUCTION_DEG)))
    arm_swing_centre: float = float(np.deg2rad(np.mean(ARM_SWING_CENTRE_DEG)))
    soft_knees: float = 0.0   # standing knees bent this much more (radians; per clip)

    @classmethod
    def sample(cls, rng):
        return cls(speed=float(rng.uniform(0.85, 1.15)), amplitude=float(rng.uniform(0.8, 1.2)),
                   hand="R" if rng.random() < 0.8 else "L",
                   posture=float(np.deg2rad(rng.uniform(-2.0, 6.0))))

    def for_clip(self, rng) -> "Style":
        """This style with a stance, step width, arm-swing centre and soft knees drawn for one
        clip (from ``rng``, a stream of their own, so that drawing them changes nothing else
        in the clip; each newer draw comes after the older ones, so those are what the
        versions before drew)."""
        return replace(self, stance=float(np.deg2rad(rng.uniform(*STANCE_ABDUCTION_DEG))),
                       step_width=float(np.deg2rad(rng.uniform(*GAIT_ABDUCTION_DEG))),
                       arm_swing_centre=float(np.deg2rad(rng.uniform(*ARM_SWING_CENTRE_DEG))),
                       soft_knees=float(np.deg2rad(rng.uniform(*SOFT_KNEES_DEG))))

    @property
    def other(self):
        return "L" if self.hand == "R" else "R"


@dataclass
class Tracks:
    """Angle tracks (radians), hand targets and root path of one sequence."""
    t: np.ndarray
    scalars: Dict[str, np.ndarray] = field(default_factory=dict)
    sided: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    hand: Dict[str, np.ndarray] = field(default_factory=dict)   # side -> (N,3) from shoulder
    pole: Dict[str, np.ndarray] = field(default_factory=dict)   # side -> (N,3) elbow direction
    position_xy: np.ndarray = None   # (N, 2) metres, relative to the capture centre
    heading: np.ndarray = None       # (N,) radians about world z
    seated: np.ndarray = None        # (N,) 0 standing .. 1 seated
    chair: float = None              # seat height (m); None: fitted to the legs; 0: floor
    gait: bool = False               # the legs walk (their ankles follow the gait cycle)

    @property
    def n(self):
        return len(self.t)

    def add(self, name, value, side=None):
        value = np.broadcast_to(np.asarray(value, np.float64), (self.n,))
        if side is None:
            self.scalars[name] = self.scalars[name] + value
        else:
            self.sided[name][side] = self.sided[name][side] + value

    def set_arm(self, side, target, pole):
        self.hand[side] = np.broadcast_to(np.asarray(target, np.float64), (self.n, 3)).copy()
        self.pole[side] = np.broadcast_to(np.asarray(pole, np.float64), (self.n, 3)).copy()

    def blend_arm(self, side, weight, target, pole, arc=0.2):
        """Move the hand towards ``target`` by ``weight`` (N,) in [0, 1].

        Half-way the hand passes ``arc`` metres further forward than the straight line, as a
        real reach does; the straight line can run through the shoulder, where the IK's
        solution turns over abruptly.
        """
        w = np.asarray(weight, np.float64)[:, None]
        bulge = 4 * w * (1 - w) * np.array([0.0, 0.0, arc])
        self.hand[side] = ((1 - w) * self.hand[side] + w * np.asarray(target, np.float64)
                           + bulge)
        self.pole[side] = (1 - w) * self.pole[side] + w * np.asarray(pole, np.float64)

    def clamp_to_limits(self):
        """Squeeze every track into its limits, smoothly (:func:`soft_range`): a hard clamp
        would put kinks, i.e. acceleration spikes, into the motion."""
        w = np.deg2rad(10.0)
        for name, arr in self.scalars.items():
            lo, hi = np.deg2rad(JOINT_LIMITS_DEG[name])
            self.scalars[name] = soft_range(arr, lo, hi, w)
        for name, per_side in self.sided.items():
            lo, hi = np.deg2rad(JOINT_LIMITS_DEG[name])
            for s in SIDES:
                per_side[s] = soft_range(per_side[s], lo, hi, w)


def _neutral_tracks(t, rest: RestSkeleton, rng, style: Style) -> Tracks:
    """Quiet standing: arms hanging, small sway and breathing, looking around a little."""
    n = len(t)
    tr = Tracks(t=t)
    for name in _SCALAR_TRACKS:
        tr.scalars[name] = np.zeros(n)
    for name in _SIDED_TRACKS:
        tr.sided[name] = {s: np.zeros(n) for s in SIDES}
    d = np.deg2rad
    tr.add("spine_flex", style.posture + d(1.5) * smooth_noise(rng, t, f_max=0.3))
    tr.add("spine_lat", d(1.5) * smooth_noise(rng, t))
    tr.add("spine_twist", d(3.0) * smooth_noise(rng, t))
    tr.add("neck_twist", d(12.0) * style.amplitude * smooth_noise(rng, t, f_max=0.25))
    tr.add("neck_flex", d(4.0) + d(5.0) * smooth_noise(rng, t))
    tr.add("head_flex", d(4.0) * smooth_noise(rng, t))
    tr.add("head_lat", d(3.0) * smooth_noise(rng, t))
    for s in SIDES:
        tr.add("knee_flex", d(4.0) + d(2.0) * smooth_noise(rng, t), s)
        tr.add("hip_flex", d(3.0) + d(1.5) * smooth_noise(rng, t), s)
        tr.add("hip_abd", style.stance, s)
        tr.add("hip_rot", d(6.0), s)    # toes slightly out
        tr.add("ankle_flex", 0.0, s)
        tr.add("wrist_flex", d(5.0) * smooth_noise(rng, t), s)
        hang = _hang_target(rest, s) + 0.02 * np.stack(
            [smooth_noise(rng, t) for _ in range(3)], -1)
        tr.set_arm(s, hang, _pole(s, out=0.3, down=-0.2, forward=-1.0))
    heading = rng.uniform(0, 2 * np.pi) + d(15.0) * smooth_noise(rng, t, f_max=0.15)
    tr.heading = heading
    start = rng.uniform(-1.0, 1.0, 2) * PLACEMENT_SPREAD_M
    drift = 0.08 * np.stack([smooth_noise(rng, t, f_max=0.1) for _ in range(2)], -1)
    tr.position_xy = start + drift
    tr.seated = np.zeros(n)
    return tr


def _hang_target(rest, side):
    """Hand hanging beside the thigh, elbow slightly bent."""
    reach = 0.97 * rest.arm_length(side)
    return rest.from_shoulder(side, 0.06, -reach, 0.05)


def _pole(side, out, down, forward):
    return np.array([LATERAL[side] * out, down, forward])


def _weight_shift(tr: Tracks, rng, style, amount_deg=4.0, f=0.12):
    """Waiting-style weight shifts: lean over one leg, relax the other knee."""
    d = np.deg2rad
    shift = smooth_noise(rng, tr.t, n_terms=2, f_min=0.5 * f, f_max=1.5 * f)
    tr.add("pelvis_list", d(amount_deg) * shift)
    tr.add("hip_abd", -d(amount_deg) * shift, "L")   # legs stay vertical under the tilt
    tr.add("hip_abd", d(amount_deg) * shift, "R")
    tr.add("knee_flex", d(10.0) * np.clip(-shift, 0, None), "L")
    tr.add("knee_flex", d(10.0) * np.clip(shift, 0, None), "R")
    tr.add("spine_lat", -d(0.5 * amount_deg) * shift)


def _step_values(rng, cycles, obstacle_prob):
    """One value per gait cycle, C2-blended between consecutive cycles (:func:`smootherstep`).

    ``cycles`` (N,): the leg's cycle coordinate, integer at mid-stance, so the value holds
    through each swing and changes only while the foot is on the ground. A cycle is a step
    over something (value 0.3..1) with probability ``obstacle_prob``, otherwise an ordinary
    one (0..0.15).
    """
    k0 = int(np.floor(cycles.min())) - 1
    count = int(np.floor(cycles.max())) - k0 + 2
    big = rng.random(count) < obstacle_prob
    e = np.where(big, rng.uniform(0.3, 1.0, count), rng.uniform(0.0, 0.15, count))
    k = np.floor(cycles).astype(int) - k0
    g = cycles - np.floor(cycles)
    before = e[k - 1] + (e[k] - e[k - 1]) * smootherstep((g + 0.15) / 0.3)
    after = e[k] + (e[k + 1] - e[k]) * smootherstep((g - 0.85) / 0.3)
    return np.where(g < 0.15, before, np.where(g > 0.85, after, e[k]))


def _gait(tr: Tracks, rest: RestSkeleton, rng, style: Style, speed=1.0, arm_swing=1.0,
          free_arms=SIDES):
    """Walking cycle along a path that curves and turns.

    Joint angles follow the usual sagittal gait curves (hip +-15..27 deg, knee 5..70 deg
    peaking in early swing, small ankle rocker, arms swinging against the legs, trunk
    counter-twist), with per-clip cadence, stride and knee lift. On rough ground (a per-clip
    ``terrain`` in [0, 1]) the gait gets cautious: knees and hips more flexed through stance,
    single steps over obstacles (one leg lifted high, hip to about 70 deg and knee to about
    125 deg, while the other stands), the trunk leaning and the gaze on the ground, elbows
    bent and hands held out for balance. The root advances at the speed implied by step
    length and cadence, so feet barely slide; the heading turns at a smoothly varying rate
    (gentle curves to sharp turns).
    """
    d = np.deg2rad
    t = tr.t
    tr.gait = True
    # uneven ground, stairs, stepping over things: slower and shorter steps, higher knee lift
    # and more hip flexion, the trunk leaning forward
    terrain = rng.uniform(0.0, 1.0)
    cadence = (rng.uniform(0.75, 1.15) * style.speed * speed         # gait cycles per second
               * (1.0 - 0.2 * terrain))
    amp = (d(rng.uniform(15.0, 30.0)) * min(1.15, style.amplitude) * (0.8 + 0.2 * speed)
           * (1.0 - 0.15 * terrain))
    lift = rng.uniform(0.85, 1.15) + 0.5 * terrain
    flexed = d(8.0) + d(20.0) * terrain
    stance_knee = d(rng.uniform(0.0, 18.0)) * terrain
    obstacles = terrain * rng.uniform(0.1, 0.6)
    # feet land close to the line of progression (real gait: 5-20 cm between the ankles), so
    # the legs converge from the hips; wider on rough ground
    step_width = style.step_width + d(2.0) * terrain
    phase = 2 * np.pi * cadence * t + rng.uniform(0, 2 * np.pi)
    for s, off in (("L", 0.0), ("R", np.pi)):
        ph = phase + off
        # swing hump: peaks between the hip's (ph = pi/2) and the knee's (ph = 0.47) maximum
        hump = ((1.0 + np.cos(ph - 0.9)) / 2.0) ** 2
        step = _step_values(rng, (ph - 0.9 + np.pi) / (2 * np.pi), obstacles)
        tr.sided["hip_flex"][s] = (flexed + amp * (1 + 0.5 * terrain) * np.sin(ph)
                                   + d(35.0) * step * hump)
        tr.sided["knee_flex"][s] = (lift * (d(30.0) + d(27.0) * np.sin(ph + 1.1)
                                            + d(8.0) * np.sin(2 * ph + 0.3))
                                    + stance_knee + d(55.0) * step * hump)
        tr.sided["ankle_flex"][s] = d(6.0) * np.sin(ph + 2.3) + d(4.0) * np.sin(2 * ph)
        tr.sided["hip_abd"][s] = step_width + d(2.0) * np.sin(ph + np.pi / 2)
    tr.scalars["pelvis_list"] = d(3.0) * np.sin(phase)
    tr.scalars["spine_twist"] = d(rng.uniform(3.0, 8.0)) * np.sin(phase + np.pi) * style.amplitude
    tr.add("spine_flex", d(3.0) + d(12.0) * terrain)
    _hip_bend(tr, d(rng.uniform(0.0, 12.0)) * terrain)
    tr.add("neck_flex", d(18.0) * terrain)      # watching the ground
    tr.scalars["neck_twist"] *= 0.4
    # elbows: a per-clip carriage from nearly straight to bent (more on rough ground), a little
    # more bent in the forward swing; hands out to the side for balance on rough ground
    carriage = rng.uniform(28.0, 55.0) + 45.0 * terrain * rng.uniform(0.0, 1.0)
    balance = 0.22 * terrain * rng.uniform(0.0, 1.0)
    for s, off in (("L", np.pi), ("R", 0.0)):
        if s not in free_arms:
            continue
        wave = np.sin(phase + off)
        swing = d(rng.uniform(10.0, 28.0)) * arm_swing * style.amplitude * wave
        flex = d(carriage + 10.0 * wave)
        reach = 0.99 * elbow_reach(rest.upper_arm(s), rest.forearm(s), flex)
        # the upper arm swings about the clip's centre; the bent forearm carries the hand forward
        ahead = style.arm_swing_centre + swing + 0.5 * flex
        target = np.stack([np.full_like(t, LATERAL[s] * (0.08 + balance)), -reach * np.cos(ahead),
                           reach * np.sin(ahead) + 0.03], -1)
        tr.set_arm(s, target, _pole(s, 0.3, -0.3, -1.0))
    # root path: arclength speed = step length x steps per second, heading rate smooth
    v = 2 * (2 * rest.leg_length * np.sin(amp)) * cadence
    turn = d(rng.uniform(-35.0, 35.0)) + d(rng.uniform(0.0, 70.0)) * smooth_noise(
        rng, t, f_min=0.1, f_max=0.5)
    dt = 1.0 / FPS
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(turn) * dt
    vel = v * np.stack([np.sin(heading), -np.cos(heading)], -1)      # facing (sin h, -cos h)
    xy = np.cumsum(vel, 0) * dt
    tr.position_xy = tr.position_xy[:1] + xy - xy.mean(0)
    tr.heading = heading


def _hip_bend(tr: Tracks, angle):
    """Bend forward at the hips by ``angle`` (N,) radians: the pelvis tilts, the thighs stay."""
    tr.add("pelvis_tilt", angle)
    for s in SIDES:
        tr.add("hip_flex", angle, s)


def _crouch(tr: Tracks, rest: RestSkeleton, rng, weight, depth=1.0, reach_floor=True):
    """Crouch (squat) by ``weight`` (N,) in [0, 1]: knees up to 135 deg, thighs near horizontal,
    trunk leaning forward for balance, hands going down towards the floor in front."""
    d = np.deg2rad
    w = np.asarray(weight, np.float64) * depth
    knee = d(135.0) * w
    thigh = 0.72 * knee                           # thigh angle from the vertical
    lean = d(rng.uniform(20.0, 40.0)) * w
    tr.add("pelvis_tilt", lean)
    tr.add("spine_flex", d(rng.uniform(5.0, 25.0)) * w)
    tr.add("neck_flex", -d(10.0) * w)
    for s in SIDES:
        tr.add("knee_flex", knee, s)
        tr.add("hip_flex", thigh + lean, s)
        tr.add("hip_abd", d(rng.uniform(5.0, 20.0)) * w, s)
        if reach_floor:
            reach = 0.9 * rest.arm_length(s)
            tr.blend_arm(s, np.asarray(weight) * 0.8, rest.from_shoulder(
                s, 0.1, -0.8 * reach, 0.45 * reach), _pole(s, 0.6, -0.5, -0.5), arc=0.0)


def _soft_knees(tr: Tracks, style: Style):
    """The clip's standing knee bend (``style.soft_knees``), the hips bent by half of it, on
    standing frames only: a gait's legs and a seat's are the action's own."""
    if tr.gait:
        return
    bend = style.soft_knees * (1.0 - tr.seated)
    for s in SIDES:
        tr.add("knee_flex", bend, s)
        tr.add("hip_flex", 0.5 * bend, s)


def _plant_feet(tr: Tracks, weight=1.0):
    """Ankles that keep the soles level (shank and thigh angles cancelled) by ``weight``."""
    for s in SIDES:
        flat = -(tr.scalars["pelvis_tilt"] - tr.sided["hip_flex"][s] + tr.sided["knee_flex"][s])
        tr.sided["ankle_flex"][s] = ((1 - weight) * tr.sided["ankle_flex"][s]
                                     + weight * flat)


def _variation(tr: Tracks, rest: RestSkeleton, rng, style: Style):
    """Per-clip habits on top of the action: trunk lean (at the hips and in the spine), trunk
    twist and side bend, head carriage and gaze, and hands that wander around their targets.
    Real people do each action in many ways; this spreads the poses over that range."""
    t, d = tr.t, np.deg2rad
    lean = d(rng.uniform(-4.0, 16.0)) + d(rng.uniform(2.0, 8.0)) * smooth_noise(rng, t)
    share = rng.uniform(0.2, 0.7)                 # how much of the lean is at the hips
    _hip_bend(tr, share * lean)
    tr.add("spine_flex", (1 - share) * lean)
    tr.add("spine_twist", d(rng.uniform(4.0, 22.0)) * smooth_noise(rng, t, f_min=0.1, f_max=0.6))
    tr.add("spine_lat", d(rng.uniform(1.0, 8.0)) * smooth_noise(rng, t))
    tr.add("neck_flex", d(rng.uniform(-8.0, 22.0)) + d(6.0) * smooth_noise(rng, t))
    tr.add("neck_twist", d(rng.uniform(5.0, 30.0)) * smooth_noise(rng, t, f_max=0.5))
    for s in SIDES:
        wander = rng.uniform(0.01, 0.05) * np.stack(
            [smooth_noise(rng, t, f_min=0.1, f_max=0.8) for _ in range(3)], -1)
        tr.hand[s] = tr.hand[s] + wander
        tr.add("hip_rot", d(rng.uniform(-8.0, 8.0)), s)


# ----------------------------------------------------------------------------- actions
def _directions(tr, rest, rng, style):
    """Pointing in changing directions (low to overhead), trunk and head following the arm."""
    t, d = tr.t, np.deg2rad
    period = rng.uniform(2.0, 3.5) / style.speed
    w = pulses(t, period, rise=0.6, hold=0.9, phase=rng.uniform(-0.8, 0.4))
    s = style.hand if rng.random() < 0.75 else style.other
    az = d(rng.uniform(20.0, 60.0)) * smooth_noise(rng, t, f_max=0.3)
    el = d(rng.uniform(-15.0, 55.0)) + d(20.0) * smooth_noise(rng, t, f_max=0.3)
    reach = 0.9 * rest.arm_length(s)
    target = np.stack([LATERAL[s] * reach * np.cos(el) * np.sin(np.abs(az) + d(15)),
                       reach * np.sin(el), reach * np.cos(el) * np.cos(np.abs(az) + d(15))], -1)
    tr.blend_arm(s, w, target, _pole(s, 0.2, -1.0, 0.0))
    tr.add("spine_twist", LATERAL[s] * d(rng.uniform(5.0, 25.0)) * w)
    tr.add("neck_twist", LATERAL[s] * d(20.0) * w)
    _weight_shift(tr, rng, style, 3.0)


def _discussion(tr, rest, rng, style):
    """Both hands gesturing in front of the chest, nodding, shifting weight."""
    t, d = tr.t, np.deg2rad
    for s in SIDES:
        w = 0.5 + 0.5 * smooth_noise(rng, t, f_min=0.15, f_max=0.5)
        wobble = 0.07 * style.amplitude * np.stack(
            [smooth_noise(rng, t, f_min=0.3, f_max=1.2) for _ in range(3)], -1)
        target = rest.from_shoulder(s, -0.02, -0.32, 0.30) + wobble
        tr.blend_arm(s, w, target, _pole(s, 0.4, -1.0, -0.3))
    tr.add("neck_flex", d(5.0) * smooth_noise(rng, t, f_min=0.4, f_max=1.0))
    _weight_shift(tr, rng, style, 4.0)


def _hand_to_face(tr, rest, rng, style, side, spot, period, hold, pole=None):
    t = tr.t
    w = pulses(t, period / style.speed, rise=0.7, hold=hold, phase=rng.uniform(-1.0, 0.5))
    tr.blend_arm(side, w, spot, pole if pole is not None else _pole(side, 0.7, -0.5, 0.6))
    return w


def _eating(tr, rest, rng, style):
    """Seated at a table, leaning over it, hand to mouth every few seconds, other hand resting
    forward."""
    _sit(tr, rest, rng, style)
    _hip_bend(tr, np.deg2rad(rng.uniform(0.0, 30.0)))
    s = style.hand
    mouth = rest.from_head(s, -0.02, -0.06, 0.12)
    w = _hand_to_face(tr, rest, rng, style, s, mouth, rng.uniform(3.0, 4.5), 0.6)
    tr.add("neck_flex", np.deg2rad(8.0) * w)
    o = style.other
    tr.set_arm(o, rest.from_shoulder(o, -0.05, -0.35, 0.32), _pole(o, 0.4, -1.0, -0.2))


def _smoking(tr, rest, rng, style):
    """Standing, cigarette to the mouth periodically, other arm across the waist."""
    s, o = style.hand, style.other
    mouth = rest.from_head(s, -0.01, -0.05, 0.13)
    _hand_to_face(tr, rest, rng, style, s, mouth, rng.uniform(3.5, 5.0), 1.0)
    tr.set_arm(o, rest.from_pelvis(o, -0.02, 0.12, 0.18), _pole(o, 0.5, -0.8, -0.5))
    _weight_shift(tr, rng, style, 3.0)


def _phoning(tr, rest, rng, style):
    """Phone held at the ear, head tilted towards it, slow steps on the spot."""
    s, o = style.hand, style.other
    ear = rest.from_head(s, 0.09, 0.0, 0.0)
    w = smootherstep((tr.t - tr.t[0]) / 0.8 + rng.uniform(0.3, 1.0))
    tr.blend_arm(s, w, ear, _pole(s, 1.0, -0.3, 0.6))   # elbow out and forward
    tr.add("head_lat", -LATERAL[s] * np.deg2rad(8.0) * w)
    g = 0.5 + 0.5 * smooth_noise(rng, tr.t, f_min=0.2, f_max=0.5)
    tr.blend_arm(o, 0.6 * g, rest.from_shoulder(o, -0.03, -0.35, 0.25),
                 _pole(o, 0.4, -1.0, -0.3))
    _weight_shift(tr, rng, style, 4.0)


def _greeting(tr, rest, rng, style):
    """Raising the hand (shoulder to overhead) and waving, a bow or a two-handed shake."""
    t, d = tr.t, np.deg2rad
    s = style.hand
    period = rng.uniform(2.5, 4.5) / style.speed
    w = pulses(t, period, rise=0.5, hold=1.4, phase=rng.uniform(-1.0, 0.3))
    wave = 0.09 * style.amplitude * np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * style.speed * t)
    reach = rest.arm_length(s)
    up = rng.uniform(0.15, 0.85) * reach
    target = np.stack([LATERAL[s] * (0.28 + wave), np.full_like(t, up),
                       np.full_like(t, 0.15)], -1)
    tr.blend_arm(s, w, target, _pole(s, 1.0, -0.6, 0.0))
    if rng.random() < 0.4:    # both hands forward, as for a handshake or a hug
        o = style.other
        tr.blend_arm(o, w, rest.from_shoulder(o, -0.05, -0.15, 0.45), _pole(o, 0.5, -1.0, 0.0))
    bow = pulses(t, period, rise=0.6, hold=0.3, phase=rng.uniform(0, period))
    _hip_bend(tr, d(rng.uniform(5.0, 30.0)) * bow * (1 - w))
    tr.add("spine_flex", d(12.0) * bow * (1 - w))
    tr.add("neck_flex", d(8.0) * bow)


def _posing(tr, rest, rng, style):
    """Holding a few statue-like poses in turn (hands on hips, one or both arms raised, lean,
    a lunge)."""
    t, d = tr.t, np.deg2rad
    period = rng.uniform(2.0, 3.5)
    w1 = pulses(t, 2 * period, rise=0.8, hold=period - 0.8, phase=rng.uniform(-period, 0))
    w2 = 1.0 - w1
    for s in SIDES:   # pose A: hands on hips, elbows out
        tr.blend_arm(s, w1, rest.from_pelvis(s, 0.16, 0.12, 0.02), _pole(s, 1.0, 0.0, -0.2))
    s, o = style.hand, style.other
    both = rng.random() < 0.4
    for side in ((s, o) if both else (s,)):   # pose B: arm(s) raised high
        reach = 0.92 * rest.arm_length(side)
        tr.blend_arm(side, w2, rest.from_shoulder(side, rng.uniform(0.1, 0.6) * reach,
                                                  rng.uniform(0.5, 0.95) * reach, 0.2 * reach),
                     _pole(side, 1.0, 0.2, 0.0))
    if not both:
        tr.blend_arm(o, w2, rest.from_pelvis(o, 0.16, 0.12, 0.02), _pole(o, 1.0, 0.0, -0.2))
    tr.add("spine_lat", -LATERAL[s] * d(rng.uniform(0.0, 15.0)) * w2)
    tr.add("spine_flex", -d(rng.uniform(0.0, 12.0)) * w2)
    lunge = d(rng.uniform(0.0, 35.0))
    tr.add("knee_flex", d(15.0) * w1 + lunge * w2, o)
    tr.add("hip_flex", d(8.0) * w1 + lunge * w2, o)
    tr.add("hip_rot", d(10.0) * w1, o)


def _purchases(tr, rest, rng, style):
    """Reaching forward and down to pick items, bending at the hips or crouching to low
    shelves, looking at them."""
    t, d = tr.t, np.deg2rad
    s = style.hand
    period = rng.uniform(2.5, 4.5) / style.speed
    w = pulses(t, period, rise=0.8, hold=0.6, phase=rng.uniform(-1.0, 0.5))
    reach = 0.9 * rest.arm_length(s)
    low = rng.uniform(0.3, 0.9)
    target = rest.from_shoulder(s, 0.05, -low * reach, 0.75 * reach)
    tr.blend_arm(s, w, target, _pole(s, 0.5, -1.0, -0.2))
    if rng.random() < 0.35:
        _crouch(tr, rest, rng, w, depth=rng.uniform(0.5, 1.0), reach_floor=False)
    else:
        _hip_bend(tr, d(rng.uniform(10.0, 45.0)) * w)
        tr.add("spine_flex", d(rng.uniform(10.0, 30.0)) * w)
        for side in SIDES:
            tr.add("knee_flex", d(rng.uniform(0.0, 20.0)) * w, side)
    tr.add("neck_flex", d(12.0) * w)
    o = style.other
    tr.set_arm(o, rest.from_shoulder(o, -0.02, -0.40, 0.22), _pole(o, 0.4, -1.0, -0.2))


def _photo(tr, rest, rng, style):
    """Both hands holding a camera in front of the face, lowered now and then; standing,
    leaning or crouching for the shot."""
    t, d = tr.t, np.deg2rad
    w = pulses(t, rng.uniform(3.0, 6.0) / style.speed, rise=0.7, hold=2.0,
               phase=rng.uniform(-2.0, 0.2))
    for s in SIDES:
        tr.blend_arm(s, w, rest.from_head(s, 0.06, 0.02, 0.22), _pole(s, 0.9, -0.6, 0.3))
    tr.add("spine_twist", d(15.0) * smooth_noise(rng, t, f_max=0.3) * w)
    kind = rng.random()
    if kind < 0.3:
        _crouch(tr, rest, rng, np.full(tr.n, 1.0), depth=rng.uniform(0.4, 1.0),
                reach_floor=False)
    elif kind < 0.55:
        _hip_bend(tr, d(rng.uniform(10.0, 35.0)) * w)
    _weight_shift(tr, rng, style, 2.0)


def _waiting(tr, rest, rng, style):
    """Weight shifts, arms crossed or hands behind the back, looking around."""
    t, d = tr.t, np.deg2rad
    crossed = rng.random() < 0.5
    for s in SIDES:
        if crossed:
            target = rest.from_shoulder(s, -0.28, -0.22, 0.16)
            pole = _pole(s, 0.6, -1.0, 0.2)
        else:
            target = rest.from_pelvis(s, -0.02, 0.05, -0.20)
            pole = _pole(s, 0.6, -0.6, -1.0)
        w = 0.8 + 0.2 * smooth_noise(rng, t, f_max=0.2)
        tr.blend_arm(s, w, target, pole)
    tr.add("neck_twist", d(15.0) * smooth_noise(rng, t, f_max=0.2))
    _weight_shift(tr, rng, style, 6.0)


def _sit(tr, rest, rng, style, weight=None):
    """Seated on a chair: hips and knees near 90 deg, hands on the thighs."""
    d = np.deg2rad
    t = tr.t
    w = np.ones(len(t)) if weight is None else weight
    for s in SIDES:
        tr.add("hip_flex", w * (d(85.0) + d(4.0) * smooth_noise(rng, t, f_max=0.2)), s)
        tr.add("knee_flex", w * (d(88.0) + d(8.0) * smooth_noise(rng, t, f_max=0.2)), s)
        tr.add("hip_abd", w * d(6.0), s)
        tr.add("ankle_flex", w * d(-2.0), s)
        thigh = rest.from_pelvis(s, 0.11, 0.05, 0.32)
        tr.blend_arm(s, w * 0.9, thigh, _pole(s, 0.5, -0.5, -1.0))
    tr.add("spine_flex", w * d(6.0))
    tr.position_xy = tr.position_xy * (1 - w[:, None]) + w[:, None] * tr.position_xy[:1]
    tr.seated = np.maximum(tr.seated, w)


def _sitting(tr, rest, rng, style):
    """Seated: leaning forward onto the thighs or back, twisting to the side, reaching for
    things, gesturing."""
    t, d = tr.t, np.deg2rad
    _sit(tr, rest, rng, style)
    s = style.hand
    w = pulses(t, rng.uniform(2.5, 5.0), rise=0.7, hold=0.8, phase=rng.uniform(-1, 1))
    reach = 0.9 * rest.arm_length(s)
    side = rng.uniform(-0.3, 0.5) * reach
    tr.blend_arm(s, w, rest.from_shoulder(s, side, rng.uniform(-0.6, 0.2) * reach,
                                          rng.uniform(0.4, 0.85) * reach),
                 _pole(s, 0.4, -1.0, -0.2))
    lean = d(rng.uniform(-12.0, 40.0))
    _hip_bend(tr, 0.6 * lean + d(8.0) * smooth_noise(rng, t, f_max=0.3))
    tr.add("spine_flex", 0.4 * lean)
    tr.add("spine_twist", d(rng.uniform(0.0, 30.0)) * smooth_noise(rng, t, f_max=0.3))
    if rng.random() < 0.4:     # legs crossed or stretched out
        o = rng.choice(SIDES)
        tr.add("knee_flex", -d(rng.uniform(20.0, 60.0)), o)
        tr.add("hip_abd", -d(rng.uniform(0.0, 12.0)), o)


def _sitting_down(tr, rest, rng, style):
    """Standing -> seated (and back up in long clips), leaning forward while lowering."""
    t, d = tr.t, np.deg2rad
    duration = t[-1] - t[0] + 1.0 / FPS
    stand, move, seat = 1.5, 1.4 / style.speed, 3.0
    period = 2 * (stand + move) + seat
    if duration < period:   # short clip: make sure the transition happens inside it
        start = t[0] + rng.uniform(0.1, 0.3) * max(duration - move, 0.1)
        u = np.mod(t - start + stand, period)
    else:
        u = np.mod(t - t[0] + rng.uniform(0, period), period)
    down = smootherstep((u - stand) / move)
    up = smootherstep((u - stand - move - seat) / move)
    w = down * (1 - up)
    transit = np.sin(np.pi * np.clip(w, 0, 1))    # peak lean mid-way
    if rng.random() < 0.45:    # down to the floor, through a crouch
        _floor_sit(tr, rest, rng, style, w)
        _crouch(tr, rest, rng, transit * (1 - 0.6 * w), depth=rng.uniform(0.7, 1.0))
        return
    _sit(tr, rest, rng, style, weight=w)
    _hip_bend(tr, d(rng.uniform(10.0, 30.0)) * transit)
    tr.add("spine_flex", d(rng.uniform(10.0, 30.0)) * transit)
    tr.add("neck_flex", -d(8.0) * transit)
    for s in SIDES:
        tr.blend_arm(s, 0.5 * transit, rest.from_shoulder(s, 0.05, -0.45, 0.35),
                     _pole(s, 0.4, -1.0, -0.3))


def _floor_sit(tr, rest, rng, style, weight):
    """Seated on the floor by ``weight``: legs out in front (knees from straight to drawn up),
    hands propped behind or on the knees."""
    t, d = tr.t, np.deg2rad
    w = np.asarray(weight, np.float64)
    # heels and seat both on the floor: with (nearly) equal thigh and shank the thigh's angle
    # from the vertical is 90 + knee / 2 (legs straight out at 0, knees drawn up at 90)
    knee = d(rng.uniform(5.0, 90.0))
    for s in SIDES:
        k = knee + d(rng.uniform(-10.0, 10.0))
        tr.add("hip_flex", w * (d(90.0) + 0.5 * k + d(3.0) * smooth_noise(rng, t)), s)
        tr.add("knee_flex", w * k, s)
        tr.add("hip_abd", w * d(rng.uniform(5.0, 25.0)), s)
        tr.add("ankle_flex", w * d(rng.uniform(0.0, 25.0)), s)
        if rng.random() < 0.5:
            target = rest.from_pelvis(s, 0.22, -0.02, -0.25)
            pole = _pole(s, 0.5, 0.0, -1.0)
        else:
            target = rest.from_shoulder(s, -0.02, -0.35, 0.42)
            pole = _pole(s, 0.5, -1.0, -0.3)
        tr.blend_arm(s, 0.9 * w, target, pole)
    _hip_bend(tr, -w * d(rng.uniform(0.0, 20.0)))    # leaning back a little
    tr.position_xy = tr.position_xy * (1 - w[:, None]) + w[:, None] * tr.position_xy[:1]
    tr.seated = np.maximum(tr.seated, w)
    tr.chair = 0.0


def _walking(tr, rest, rng, style):
    _gait(tr, rest, rng, style)


def _walk_dog(tr, rest, rng, style):
    """Slower, irregular walk, one hand forward and low holding a leash that tugs; or
    crouching down to the dog."""
    s = style.hand
    if rng.random() < 0.35:
        w = pulses(tr.t, rng.uniform(3.0, 5.0), rise=0.9, hold=1.2, phase=rng.uniform(-1.5, 0))
        _crouch(tr, rest, rng, w, depth=rng.uniform(0.6, 1.0))
        return
    _gait(tr, rest, rng, style, speed=0.8, free_arms=(style.other,), arm_swing=0.7)
    reach = 0.9 * rest.arm_length(s)
    tug = 0.06 * smooth_noise(rng, tr.t, f_min=0.4, f_max=1.5)
    target = rest.from_shoulder(s, 0.08, -0.75 * reach, 0.55 * reach) + tug[:, None]
    tr.set_arm(s, target, _pole(s, 0.3, -1.0, -0.4))
    tr.add("spine_flex", np.deg2rad(5.0))
    tr.add("neck_flex", np.deg2rad(10.0))


def _walk_together(tr, rest, rng, style):
    """Walking beside someone: slower, head turned to the companion, reduced swing."""
    side = rng.choice(SIDES)
    _gait(tr, rest, rng, style, speed=0.85, arm_swing=0.6)
    look = np.deg2rad(20.0) + np.deg2rad(8.0) * smooth_noise(rng, tr.t, f_max=0.3)
    tr.add("neck_twist", LATERAL[side] * look)


ACTION_GENERATORS: Dict[str, Callable] = {
    "Directions": _directions, "Discussion": _discussion, "Eating": _eating,
    "Greeting": _greeting, "Phoning": _phoning, "Posing": _posing, "Purchases": _purchases,
    "Sitting": _sitting, "SittingDown": _sitting_down, "Smoking": _smoking, "Photo": _photo,
    "Waiting": _waiting, "Walking": _walking, "WalkDog": _walk_dog,
    "WalkTogether": _walk_together,
}
assert set(ACTION_GENERATORS) == set(ACTIONS)
SEATED_ACTIONS = ("Eating", "Sitting", "SittingDown")
GAIT_ACTIONS = ("Walking", "WalkDog", "WalkTogether")   # walk in most clips


def action_tracks(action: str, num_frames: int, rest: RestSkeleton, rng, style: Style,
                  fps: int = FPS) -> Tracks:
    """Clamped angle tracks, hand targets and root path of one clip of ``action``."""
    if action not in ACTION_GENERATORS:
        raise ValueError(f"unknown action '{action}'; known: {', '.join(ACTIONS)}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    t = np.arange(num_frames) / float(fps)
    tr = _neutral_tracks(t, rest, rng, style)
    ACTION_GENERATORS[action](tr, rest, rng, style)
    _soft_knees(tr, style)
    _variation(tr, rest, rng, style)
    if not tr.gait:
        _plant_feet(tr, 1.0 - tr.seated * (tr.chair == 0.0))
    tr.clamp_to_limits()
    return tr


# ----------------------------------------------------------------------------- pose
def soft_range(x, lo, hi, width=0.05):
    """Identity in the middle of [lo, hi], saturating smoothly (C1, tanh) towards both ends.

    The outer ``width`` of the range on each side is compressed, so the result stays strictly
    inside (lo, hi) however far ``x`` goes.
    """
    width = min(width, 0.25 * (hi - lo))
    a, b = lo + width, hi - width
    x = np.asarray(x, np.float64)
    out = np.where(x > b, b + width * np.tanh((x - b) / width), x)
    return np.where(x < a, a - width * np.tanh((a - x) / width), out)


def elbow_reach(upper, fore, flex):
    """Shoulder-to-wrist distance at elbow flexion ``flex`` (radians; law of cosines)."""
    return np.sqrt(upper ** 2 + fore ** 2 + 2 * upper * fore * np.cos(flex))


def arm_ik(target, pole, upper, fore, rest_dir, min_flex_deg=JOINT_LIMITS_DEG["elbow_flex"][0],
           max_flex_deg=JOINT_LIMITS_DEG["elbow_flex"][1]):
    """Two-bone IK in the chest frame.

    Returns the shoulder rotation (N,3,3) that maps the rest upper-arm direction onto the
    solved one (with the elbow's bend plane containing the pole) and the elbow flexion (N,).
    The shoulder-hand distance is squeezed smoothly (:func:`soft_range`) into what the elbow's
    limits allow: a hard clamp would put kinks, i.e. acceleration spikes, into the motion.
    """
    target = np.asarray(target, np.float64)
    r_far = elbow_reach(upper, fore, np.deg2rad(min_flex_deg))
    r_near = elbow_reach(upper, fore, np.deg2rad(max_flex_deg))
    r = soft_range(np.linalg.norm(target, axis=-1), r_near, r_far)
    cos_flex = (r ** 2 - upper ** 2 - fore ** 2) / (2 * upper * fore)
    flex = np.arccos(np.clip(cos_flex, -1, 1))
    h = _unit(target)
    cos_a = np.clip((upper ** 2 + r ** 2 - fore ** 2) / (2 * upper * r), -1, 1)
    alpha = np.arccos(cos_a)
    n = _unit(pole - (pole * h).sum(-1, keepdims=True) * h)
    d = np.cos(alpha)[:, None] * h + np.sin(alpha)[:, None] * n     # upper-arm direction
    f = _unit(r[:, None] * h - upper * d)                            # forearm direction
    b = _unit(f - (f * d).sum(-1, keepdims=True) * d)                # bend direction
    a = np.asarray(rest_dir, np.float64)
    z = _unit(np.array([0.0, 0.0, 1.0]) - a[2] * a)
    rest_frame = np.stack([a, z, np.cross(a, z)], -1)                # columns
    new_frame = np.stack([d, b, np.cross(d, b)], -1)
    return new_frame @ rest_frame.T, flex


def compose_pose(tr: Tracks, rest: RestSkeleton) -> np.ndarray:
    """SMPL pose (N, 72) axis-angle, global orientation into the z-up world included."""
    return matrix_to_axis_angle(compose_rotations(tr, rest)).reshape(tr.n, 72)


def compose_rotations(tr: Tracks, rest: RestSkeleton) -> np.ndarray:
    """(N, 24, 3, 3) local rotations of the SMPL tree (joint 0: body frame -> z-up world)."""
    n = tr.n
    sc, sd = tr.scalars, tr.sided
    R = np.tile(np.eye(3), (n, 24, 1, 1))
    body = rot_z(sc["pelvis_list"]) @ rot_x(sc["pelvis_tilt"])
    R[:, 0] = rot_z(tr.heading) @ rot_x(np.full(n, np.pi / 2)) @ body
    spine = rot_y(sc["spine_twist"] / 3) @ rot_z(sc["spine_lat"] / 3) @ rot_x(sc["spine_flex"] / 3)
    for name in ("spine1", "spine2", "spine3"):
        R[:, _J[name]] = spine
    R[:, _J["neck"]] = rot_y(sc["neck_twist"]) @ rot_x(sc["neck_flex"])
    R[:, _J["head"]] = rot_z(sc["head_lat"]) @ rot_x(sc["head_flex"])
    for s in SIDES:
        lat = LATERAL[s]
        R[:, _SIDE_JOINT[(s, "hip")]] = (rot_x(-sd["hip_flex"][s]) @ rot_z(lat * sd["hip_abd"][s])
                                         @ rot_y(lat * sd["hip_rot"][s]))
        R[:, _SIDE_JOINT[(s, "knee")]] = rot_x(sd["knee_flex"][s])
        R[:, _SIDE_JOINT[(s, "ankle")]] = rot_x(sd["ankle_flex"][s])
        shoulder, flex = arm_ik(tr.hand[s], tr.pole[s], rest.upper_arm(s), rest.forearm(s),
                                rest.rest_direction(s))
        R[:, _SIDE_JOINT[(s, "shoulder")]] = shoulder
        R[:, _SIDE_JOINT[(s, "elbow")]] = rot_y(-lat * flex)
        R[:, _SIDE_JOINT[(s, "wrist")]] = rot_z(-lat * sd["wrist_flex"][s])
    return R


# ----------------------------------------------------------------------------- placement
def capture_centre(cameras) -> np.ndarray:
    """World point (mm) closest, in least squares, to all cameras' optical axes."""
    A = np.zeros((3, 3))
    rhs = np.zeros(3)
    for cam in cameras.values():
        axis = cam.R[2]   # optical axis in world coordinates
        P = np.eye(3) - np.outer(axis, axis)
        A += P
        rhs += P @ cam.center_world
    return np.linalg.solve(A, rhs)


ENVELOPE_FRAMES = 1      # half-width of the root-height smoothing (frames)
CONTACT_SOFTNESS_M = 0.006   # soft minimum over the foot points (heel, toe, other foot)


def soft_min(z, tau):
    """Smooth minimum over the last axis, -tau * log(sum(exp(-z / tau))): at most
    tau * log(count) below the true minimum, and as smooth as its inputs.

    Support passes from heel to toe to the other foot during a step; following the lowest
    point exactly would put kinks (acceleration spikes) into the whole body.
    """
    z = np.asarray(z, np.float64)
    if tau <= 0:
        return z.min(-1)
    m = z.min(-1, keepdims=True)
    return (m - tau * np.log(np.exp(-(z - m) / tau).sum(-1, keepdims=True)))[..., 0]
SEAT_APPROACH_M = 0.3    # how far above the chair the seat is while sitting down begins


def upper_envelope(z, half_width: int):
    """A smooth curve never below ``z``: a running max of half-width 2h, then two running means
    of half-width h (each mean covers only maxima over windows that contain the frame).

    The lowest foot point switches from heel to toe to the other foot during a step; placing
    the root by it exactly would put kinks (acceleration spikes) into the whole body.
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d
    z = np.asarray(z, np.float64)
    if half_width < 1 or len(z) < 2:
        return z
    out = maximum_filter1d(z, 4 * half_width + 1, mode="nearest")
    for _ in range(2):
        out = uniform_filter1d(out, 2 * half_width + 1, mode="nearest")
    return np.maximum(out, z)


def root_position(points, target_xy, seated, foot_ids, seat_ids, chair_height=None,
                  default_chair_height=0.45, softness=None, smooth_frames=None):
    """Pelvis position (N, 3) metres placing skeleton points (N, P, 3) (pelvis at 0) in the room.

    Standing: the lowest foot point (ankles, heels, toes) touches z = 0. Seated: the lower seat
    bone rests at ``chair_height`` (default: the height at which the feet just reach the floor
    in the most flexed seated frame; 0 for a clip that sits on the floor, which passes
    ``chair_height=0``), or the feet stay on the floor where they reach lower. While sitting
    down (``seated`` between 0 and 1) the feet carry the body; the feet never go below the
    floor. The height is then smoothed (:func:`upper_envelope`), so a
    standing foot may hover a few millimetres during weight transfer, as in real capture. The
    pelvis ends over ``target_xy``.
    """
    points = np.asarray(points, np.float64)
    softness = CONTACT_SOFTNESS_M if softness is None else softness
    smooth_frames = ENVELOPE_FRAMES if smooth_frames is None else smooth_frames
    foot_min = soft_min(points[:, list(foot_ids), 2], softness)
    seat_min = points[:, list(seat_ids), 2].min(1)
    w = np.asarray(seated, np.float64)
    if chair_height is None:
        full = w > 0.999
        chair_height = (float((seat_min - foot_min)[full].min()) if full.any()
                        else default_chair_height)
    # the feet carry the body unless the seat does: fully seated (w = 1), whichever support is
    # higher; on the way down (w < 1) the seat is lowered towards the chair without touching
    z = np.maximum(-foot_min, chair_height - seat_min - SEAT_APPROACH_M * (1 - w))
    z = upper_envelope(z, smooth_frames)
    return np.concatenate([np.asarray(target_xy, np.float64), z[:, None]], -1)


def joints_inside_images(joints_mm, cameras, margin_px=10.0) -> bool:
    """True when every joint of every frame projects inside every camera's image."""
    for cam in cameras.values():
        X = cam.world_to_camera(np.asarray(joints_mm, np.float64))
        if (X[..., 2] <= 100.0).any():
            return False
        uv = cam.project(X)
        inside = ((uv[..., 0] >= margin_px) & (uv[..., 0] <= cam.width - margin_px) &
                  (uv[..., 1] >= margin_px) & (uv[..., 1] <= cam.height - margin_px))
        if not inside.all():
            return False
    return True
