"""PHC-style body-shape fit with real SMPL-X / SMPL model files: choose betas (and one scale) so
the human's rest-pose segment lengths match the G1's, then re-pose the clip with those betas.

Joint positions of a rest pose are linear in betas (J = J_reg (v_template + shapedirs b)), so the
fit is a small least-squares problem over 10 betas and a scale, regularised towards the mean shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ingest.body_model import SmplxBody
from retarget.correspondence import KEYPOINT_PARENT

N_BETAS = 10
BETAS_PRIOR = 1e-4  # [m^2] per unit beta^2: 1 unit of shape costs as much as 1 cm of length error


@dataclass(frozen=True)
class BetasFit:
    betas: list[float]  # fitted SMPL(-X) shape
    scale: float  # human metres -> robot metres after the shape change
    residual_before_m: float  # RMS segment-length mismatch with the mean shape and best scale
    residual_after_m: float


def _rest_basis(body: SmplxBody) -> tuple[np.ndarray, np.ndarray]:
    m = body._model
    v = m.v_template.detach().numpy().astype(np.float64)
    sd = m.shapedirs.detach().numpy().astype(np.float64)[..., :N_BETAS]
    jr = m.J_regressor.detach().numpy().astype(np.float64)
    return jr @ v, np.einsum("jv,vcb->jcb", jr, sd)


def fit_betas(body: SmplxBody, table: dict[str, str], robot_rest: dict[str, np.ndarray]) -> BetasFit:
    """table: robot keypoint -> human joint name; robot_rest: keypoint -> (1, 3) in the G1's zero pose."""
    j0, jd = _rest_basis(body)
    names = list(body.joint_names)
    segs = [(names.index(table[c]), names.index(table[p]), c, p) for c, p in KEYPOINT_PARENT.items()
            if c in table and p in table]
    robot_len = np.array([np.linalg.norm(robot_rest[c][0] - robot_rest[p][0]) for _, _, c, p in segs])

    def lengths(b: np.ndarray) -> np.ndarray:
        j = j0 + jd @ b
        return np.array([np.linalg.norm(j[a] - j[q]) for a, q, _, _ in segs])

    def residual(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[N_BETAS] * lengths(x[:N_BETAS]) - robot_len, np.sqrt(BETAS_PRIOR) * x[:N_BETAS]])

    l0 = lengths(np.zeros(N_BETAS))
    s0 = float(l0 @ robot_len / (l0 @ l0))
    sol = least_squares(residual, np.concatenate([np.zeros(N_BETAS), [s0]]), method="lm")
    betas, scale = sol.x[:N_BETAS], float(sol.x[N_BETAS])
    rms = lambda r: float(np.sqrt(np.mean(r ** 2)))  # noqa: E731
    return BetasFit([float(b) for b in betas], scale, rms(s0 * l0 - robot_len), rms(scale * lengths(betas) - robot_len))


def repose(body: SmplxBody, params: dict[str, np.ndarray], fit: BetasFit) -> np.ndarray:
    """The clip's joints (T, J, 3) with the fitted shape, scaled to robot size, z-up.

    params are the z-up `param_*` arrays of human.npz; the pelvis keeps its place when the shape
    changes (trans is corrected by the change of the pelvis rest position).
    """
    j0, jd = _rest_basis(body)
    t = len(params["trans"])
    old = np.broadcast_to(np.atleast_2d(params["betas"])[:, :N_BETAS], (t, N_BETAS))
    new = np.broadcast_to(np.array(fit.betas), (t, N_BETAS))
    pelvis_old = j0[0] + old @ jd[0].T
    pelvis_new = j0[0] + new @ jd[0].T
    trans = params["trans"] + pelvis_old - pelvis_new
    joints = body.joints(params["root_orient"], params["pose_body"], trans, new,
                         params.get("pose_hand"), params.get("pose_jaw"))
    return joints * fit.scale
