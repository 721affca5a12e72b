"""Procedural talking-head renderer (numpy + OpenCV only, no face images).

Why this shape: the demo corpus must pass a *real* face detector (dlib HOG), landmarker and identity
encoder, so the face is drawn with the cues those models key on -- a shaded skin oval, dark eye
sockets and brows, a nose with side shadows and nostrils, lips around a dark mouth interior -- rather
than as a flat cartoon. Feature points live on a frontal 2-D template lifted onto an ellipsoid, so yaw
and pitch move them with natural foreshortening; roll, scale and translation are a 2-D similarity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from kling.demo.raster import ONE, SHIFT, ellipse_pts, fill, paint, soft

@dataclass(frozen=True)
class Identity:
    """Appearance of one synthetic person (template units: pixels of a 256-px frame at scale 1)."""

    name: str
    skin: tuple[int, int, int]  # RGB
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lip: tuple[int, int, int]
    shirt: tuple[int, int, int]
    face_a: float = 46.0  # half width of the face oval
    face_b: float = 60.0  # half height (eye line to chin ~ b)
    jaw_taper: float = 0.25  # 0 round jaw, 0.4 pointed chin
    eye_dx: float = 19.0  # eye centre to face midline
    eye_w: float = 9.0  # half width of the eye opening
    eye_h: float = 4.2  # upper lid height above the eye axis
    brow_dy: float = 13.0  # brow above eye centre
    brow_thick: float = 3.2
    brow_tilt: float = 0.0  # >0 raises the outer ends
    nose_len: float = 24.0  # eye line to nose base
    nose_w: float = 8.5
    mouth_y: float = 38.0  # eye line to mouth centre
    mouth_w: float = 15.0  # half width of the mouth
    lip_thick: float = 4.5
    hair_style: str = "short"  # short | long | bun | crop
    hairline: float = 33.0  # eye line to hairline
    beard: float = 0.0  # stubble darkness 0..1
    full_beard: float = 0.0  # opacity of a hair-coloured beard over the jaw
    mustache: float = 0.0  # opacity of a moustache above the upper lip
    glasses: bool = False
    eye_tilt: float = 0.0  # degrees, >0 lifts the outer corners
    age: float = 0.0  # 0..1 strength of nasolabial folds and under-eye lines
    liner: float = 1.0  # upper lash-line thickness factor


@dataclass(frozen=True)
class Pose:
    """Per-frame state: angles in degrees, translation in pixels, mouth/blink in 0..1."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 1.0
    tx: float = 0.0
    ty: float = 0.0
    mouth: float = 0.0
    blink: float = 0.0


class _Head:
    """Projects template points (x right, y down, origin between the eyes) into the frame."""

    def __init__(self, ident: Identity, pose: Pose, center: tuple[float, float]):
        self.i = ident
        self.p = pose
        y, p, r = (math.radians(v) for v in (pose.yaw, pose.pitch, pose.roll))
        self.cy, self.sy, self.cp, self.sp = math.cos(y), math.sin(y), math.cos(p), math.sin(p)
        s = pose.scale
        self.R = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]], np.float32) * s
        self.c = np.array([center[0] + pose.tx, center[1] + pose.ty], np.float32)
        self.s = s
        self.roll = pose.roll
        # ellipsoid centre sits a little below the eye line (template origin)
        self.oy = 6.0
        self.depth = 0.85 * ident.face_a
        # a head turns and nods about the neck, behind the face: features also slide sideways / down
        self.pivot_yaw = 0.3 * ident.face_a
        self.pivot_pitch = 0.6 * ident.face_a

    def z_of(self, pts: np.ndarray) -> np.ndarray:
        """Depth toward the viewer: a face-shaped ellipsoid plus a nose ridge rising to the tip."""
        i = self.i
        a, b = i.face_a * 1.05, i.face_b * 1.4
        q = 1.0 - (pts[:, 0] / a) ** 2 - ((pts[:, 1] - self.oy) / b) ** 2
        z = self.depth * np.sqrt(np.clip(q, 0.0, None))
        tip = i.nose_len - 3.0
        along = np.clip((pts[:, 1] + 6.0) / (tip + 6.0), 0, None)
        along = np.where(pts[:, 1] > tip, np.clip(1.0 - (pts[:, 1] - tip) / 7.0, 0, 1), along)
        return z + 0.35 * i.face_a * along * np.exp(-((pts[:, 0] / (0.9 * i.nose_w)) ** 2))

    def proj(self, pts, dz=0.0) -> np.ndarray:
        pts = np.asarray(pts, np.float32).reshape(-1, 2)
        x, y = pts[:, 0], pts[:, 1] - self.oy
        z = self.z_of(pts) + dz + self.pivot_yaw
        x1 = x * self.cy + z * self.sy  # yaw about the vertical axis
        z1 = -x * self.sy + z * self.cy - self.pivot_yaw + self.pivot_pitch
        y1 = y * self.cp + z1 * self.sp  # pitch: positive looks down
        out = np.stack([x1, y1 + self.oy * self.cp], 1) @ self.R.T + self.c
        return out

    def fx(self, pts, dz=0.0) -> np.ndarray:
        """Projected points as cv2 fixed-point int32."""
        return np.round(self.proj(pts, dz) * ONE).astype(np.int32)


def _face_outline(ident: Identity) -> np.ndarray:
    """Frontal template outline: ellipse whose lower half narrows toward the chin."""
    a, b = ident.face_a, ident.face_b
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False, dtype=np.float32)
    x, y = a * np.cos(t), np.sin(t)
    lower = np.clip(y, 0, None)
    x = x * (1.0 - ident.jaw_taper * lower**2)
    top = 1.1 * b  # skull taller than the eye-to-chin distance
    y = np.where(y < 0, y * top, y * b)
    return np.stack([x, y + 4.0], 1)


def render_frame(
    ident: Identity, pose: Pose, background: np.ndarray, grain: np.ndarray | None = None,
    head_scale: float | None = None, head_y: float = 0.45,
) -> np.ndarray:
    """Draw one RGB uint8 frame of `ident` in `pose` over a float32 background (+ optional grain field).

    The background may be any H x W. head_scale: frame pixels per template unit (default H / 256: a
    close-up whose head grows with the frame; smaller values give half-body framing, the shoulders and
    torso reaching the bottom edge); head_y: the head's rest position as a fraction of H.
    """
    size_h, size_w = background.shape[:2]
    k = size_h / 256.0 if head_scale is None else float(head_scale)
    img = background.copy()
    # template units are 256-px pixels; scale the whole head with the frame
    pose = Pose(**{**pose.__dict__, "scale": pose.scale * k, "tx": pose.tx * k, "ty": pose.ty * k})
    i = ident
    s = pose.scale
    center = np.array([size_w * 0.5 + pose.tx, size_h * head_y + pose.ty])
    skin = np.array(i.skin, np.float32)
    hair = np.array(i.hair, np.float32)

    # --- shoulders and torso (follow translation and scale, not head rotation) ---
    body = np.zeros((size_h, size_w), np.float32)
    bc = center + np.array([0, 118 * s])
    cv2.ellipse(body, (int(bc[0] * ONE), int(bc[1] * ONE)), (int(100 * s * ONE), int(52 * s * ONE)),
                0, 180, 360, 1.0, -1, cv2.LINE_AA, SHIFT)
    if head_scale is None:
        cv2.rectangle(body, (int(bc[0] - 100 * s), int(bc[1])), (int(bc[0] + 100 * s), size_h), 1.0, -1)
    else:  # half-body: a torso widening to the hips, arms hanging at its sides
        bottom = size_h + 1.0
        torso = np.array([[bc[0] - 100 * s, bc[1]], [bc[0] + 100 * s, bc[1]],
                          [bc[0] + 112 * s, bottom], [bc[0] - 112 * s, bottom]])
        fill(body, np.round(torso * ONE).astype(np.int32))
    body_shade = 0.75 + 0.25 * soft(body, 10 * s)
    paint(img, body, np.array(i.shirt, np.float32)[None, None] * body_shade[..., None])
    if head_scale is not None:
        for side in (-1, 1):  # sleeves: a darker band down each side, with a crease towards the torso
            arm = np.zeros_like(body)
            ax = bc[0] + side * 100 * s
            pts = np.array([[ax - side * 34 * s, bc[1] + 20 * s], [ax + side * 4 * s, bc[1] + 10 * s],
                            [ax + side * 18 * s, size_h + 1.0], [ax - side * 22 * s, size_h + 1.0]])
            fill(arm, np.round(pts * ONE).astype(np.int32))
            paint(img, arm, np.array(i.shirt, np.float32)[None, None] * 0.82 * body_shade[..., None])
            hand_y = bc[1] + 250 * s  # a hand at the end of the sleeve when the frame reaches it
            if hand_y < size_h:
                hand = np.zeros_like(body)
                cv2.ellipse(hand, (int((ax + side * 2 * s) * ONE), int(hand_y * ONE)),
                            (int(16 * s * ONE), int(22 * s * ONE)), 0, 0, 360, 1.0, -1, cv2.LINE_AA, SHIFT)
                paint(img, hand, skin * 0.9)

    # everything else is drawn inside the head's bounding box (a view into img)
    half_w = (i.face_a + 35) * s
    x0, x1 = int(max(0, center[0] - half_w)), int(min(size_w, center[0] + half_w + 1))
    y0 = int(max(0, center[1] - (1.1 * i.face_b + 50) * s))
    y1 = int(min(size_h, center[1] + 100 * s))
    sub = img[y0:y1, x0:x1]
    h = _Head(ident, pose, (size_w * 0.5 - x0, size_h * head_y - y0))
    roi = (y1 - y0, x1 - x0)
    blank = lambda: np.zeros(roi, np.float32)  # noqa: E731
    _draw_head(sub, h, i, pose, skin, hair, blank)
    if grain is not None:  # sensor grain: breaks perfect flatness, still deterministic
        img += grain[..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _draw_head(img, h: _Head, i: Identity, pose: Pose, skin, hair, blank) -> None:
    roi_h, roi_w = img.shape[:2]
    if i.hair_style == "long":  # hair falling behind the neck onto the shoulders
        back = blank()
        pts = np.concatenate([ellipse_pts(0, -4, i.face_a + 12, i.face_b + 14, 40, math.pi, 2 * math.pi),
                              [[i.face_a + 16, 80], [-(i.face_a + 16), 80]]])
        fill(back, h.fx(pts, dz=-30))
        paint(img, back, hair * 0.8)

    neck = blank()
    nw = i.face_a * 0.55
    npts = np.array([[-nw, 30], [nw, 30], [nw * 1.15, 95], [-nw * 1.15, 95]], np.float32)
    npts_f = np.round(((npts @ h.R.T) + h.c) * ONE).astype(np.int32)
    fill(neck, npts_f)
    neck_shadow = soft(neck, 4 * h.s)
    paint(img, neck, skin * 0.78 * (0.8 + 0.2 * neck_shadow[..., None]))

    # --- ears (drawn before the face so the far ear hides behind it) ---
    for side in (-1, 1):
        ear = blank()
        c = h.proj([[side * (i.face_a - 1), 9]], dz=-i.face_a * 0.25)[0]
        ax = 6.5 * h.s * max(0.35, 1 - 0.8 * side * h.sy)
        cv2.ellipse(ear, (int(c[0] * ONE), int(c[1] * ONE)), (int(ax * ONE), int(11 * h.s * ONE)),
                    h.roll, 0, 360, 1.0, -1, cv2.LINE_AA, SHIFT)
        paint(img, ear, skin * 0.85)

    # --- face skin with volume shading ---
    face = blank()
    outline = _face_outline(i)
    fill(face, h.fx(outline, dz=-h.depth * 0.15))
    vol = soft(face, 9 * h.s)
    xs = np.arange(roi_w, dtype=np.float32)[None, :] - h.c[0]
    light = 1.0 - 0.10 * xs / (i.face_a * h.s)  # key light from the viewer's left
    shade = (0.62 + 0.38 * np.sqrt(np.clip(vol, 0, 1))) * light

    # darker sockets, nose sides, under-nose, under-lip, cheek hollows; soft highlights
    dark = blank()
    for side in (-1, 1):
        c = h.proj([[side * i.eye_dx, -1.5]])[0]
        cv2.ellipse(dark, (int(c[0] * ONE), int(c[1] * ONE)),
                    (int((i.eye_w + 5) * h.s * ONE * (1 - 0.3 * side * h.sy)), int((i.eye_h + 5) * h.s * ONE)),
                    h.roll, 0, 360, 0.55, -1, cv2.LINE_AA, SHIFT)
        cv2.polylines(dark, [h.fx([[side * 5, -2], [side * (i.nose_w * 0.8), i.nose_len * 0.6],
                                   [side * (i.nose_w + 1), i.nose_len - 2]], dz=6).reshape(-1, 1, 2)],
                      False, 0.5 if side > 0 else 0.3, int(3 * h.s * ONE) // ONE + 1, cv2.LINE_AA, SHIFT)
        cv2.polylines(dark, [h.fx([[side * (i.face_a - 8), 14], [side * (i.face_a - 14), 30]]).reshape(-1, 1, 2)],
                      False, 0.35, int(5 * h.s) + 1, cv2.LINE_AA, SHIFT)
    fill(dark, h.fx(ellipse_pts(0, i.nose_len + 3, i.nose_w * 0.8, 2.5, 20), dz=4), 0.45)
    fill(dark, h.fx(ellipse_pts(0, i.mouth_y + i.lip_thick + 5, i.mouth_w * 0.6, 2.5, 20)), 0.4)
    dark = cv2.GaussianBlur(dark, (0, 0), 2.2 * h.s)
    hi = blank()
    fill(hi, h.fx(ellipse_pts(0, -26, 14, 6, 20)), 0.6)
    fill(hi, h.fx(ellipse_pts(0, 8, 2.5, 9, 16), dz=8), 0.9)
    for side in (-1, 1):
        fill(hi, h.fx(ellipse_pts(side * (i.eye_dx + 2), 17, 8, 5, 20)), 0.45)
    hi = cv2.GaussianBlur(hi, (0, 0), 3.0 * h.s)
    if i.beard > 0:
        beard = blank()
        jaw = outline[(outline[:, 1] > i.nose_len + 2)]
        jaw = jaw[np.argsort(np.arctan2(jaw[:, 1] - 20, jaw[:, 0]))]
        fill(beard, h.fx(np.concatenate([jaw, [[0, i.nose_len + 6]]])), i.beard)
        beard = cv2.GaussianBlur(beard, (0, 0), 3 * h.s)
        dark += 0.55 * beard
    if i.age > 0:  # folds from the nose wings to the mouth corners, lines under the eyes
        for side in (-1, 1):
            cv2.polylines(dark, [h.fx([[side * (i.nose_w + 1), i.nose_len - 2], [side * (i.mouth_w + 3), i.mouth_y - 2],
                                       [side * (i.mouth_w + 4), i.mouth_y + 6]], dz=3).reshape(-1, 1, 2)],
                          False, i.age, 2, cv2.LINE_AA, SHIFT)
            cv2.polylines(dark, [h.fx(ellipse_pts(side * i.eye_dx, 1.0, i.eye_w * 0.9, i.eye_h + 3.0, 12,
                                                   0.2 * math.pi, 0.8 * math.pi)).reshape(-1, 1, 2)],
                          False, 0.7 * i.age, 1, cv2.LINE_AA, SHIFT)
    shade = shade * (1.0 - 0.45 * dark) + 0.18 * hi
    skin_map = skin[None, None] * shade[..., None]
    paint(img, face, skin_map)

    # --- hair on top of the head ---
    cap = blank()
    hl = i.hairline
    top = ellipse_pts(0, 4, i.face_a + 3, i.face_b * 1.1 + 5, 40, math.pi, 2 * math.pi)
    if i.hair_style == "crop":
        fringe = np.array([[i.face_a + 2, -hl + 8], [i.face_a * 0.5, -hl - 2], [0, -hl],
                           [-i.face_a * 0.5, -hl - 2], [-i.face_a - 2, -hl + 8]])
    else:
        fringe = np.array([[i.face_a + 4, 2], [i.face_a - 3, -hl + 6], [i.face_a * 0.4, -hl + 1],
                           [-i.face_a * 0.2, -hl + 4], [-i.face_a + 4, -hl + 10], [-i.face_a - 4, 2]])
    cap_pts = np.concatenate([top, fringe])
    fill(cap, h.fx(cap_pts, dz=-h.depth * 0.1))
    if i.hair_style == "bun":
        c = h.proj([[0, -i.face_b * 1.1 - 8]], dz=-20)[0]
        cv2.circle(cap, (int(c[0] * ONE), int(c[1] * ONE)), int(17 * h.s * ONE), 1.0, -1, cv2.LINE_AA, SHIFT)
    hair_vol = soft(cap, 5 * h.s)
    paint(img, cap, hair[None, None] * (0.55 + 0.45 * hair_vol[..., None]) * light[..., None])

    # --- brows ---
    for side in (-1, 1):
        brow = blank()
        e = i.eye_dx
        up = i.brow_tilt
        ctr = np.array([[side * (e - 10), -i.brow_dy + 1], [side * e, -i.brow_dy - 2.5],
                        [side * (e + 10), -i.brow_dy + 1 - up]], np.float32)
        t = i.brow_thick
        upper = ctr + [0, -t / 2]
        lower = (ctr + [0, t / 2])[::-1]
        lower[0, 1] -= t * 0.4  # taper the outer end
        fill(brow, h.fx(np.concatenate([upper, lower]), dz=2))
        paint(img, brow, hair * 0.85)

    # --- eyes ---
    open_ = max(0.0, 1.0 - pose.blink)
    for side in (-1, 1):
        cx, cy = side * i.eye_dx, 0.0
        tt = np.linspace(0, math.pi, 17, dtype=np.float32)
        xs_ = cx - np.cos(tt) * i.eye_w
        upper = np.stack([xs_, cy - np.sin(tt) * i.eye_h * open_], 1)
        lower = np.stack([xs_[::-1], cy + np.sin(tt[::-1]) * i.eye_h * 0.7 * open_], 1)
        if i.eye_tilt:  # canthal tilt: rotate the eye shape about its centre
            a_ = math.radians(i.eye_tilt) * side
            rot = np.array([[math.cos(a_), math.sin(a_)], [-math.sin(a_), math.cos(a_)]], np.float32)
            upper = (upper - [cx, cy]) @ rot + [cx, cy]
            lower = (lower - [cx, cy]) @ rot + [cx, cy]
        white = blank()
        if open_ > 0.08:
            fill(white, h.fx(np.concatenate([upper, lower]), dz=1))
            paint(img, white, np.array([228, 222, 215], np.float32) * 0.95)
            iris = blank()
            ic = h.proj([[cx + 0.5, cy + 0.5]], dz=2)[0]
            r = i.eye_h * 1.15 * h.s
            cv2.circle(iris, (int(ic[0] * ONE), int(ic[1] * ONE)), int(r * ONE), 1.0, -1, cv2.LINE_AA, SHIFT)
            iris *= white
            paint(img, iris, i.iris)
            pupil = blank()
            cv2.circle(pupil, (int(ic[0] * ONE), int(ic[1] * ONE)), int(r * 0.45 * ONE), 1.0, -1,
                       cv2.LINE_AA, SHIFT)
            paint(img, pupil * white, (15, 12, 12))
            glint = blank()
            cv2.circle(glint, (int((ic[0] - r * 0.3) * ONE), int((ic[1] - r * 0.35) * ONE)),
                       int(r * 0.22 * ONE), 1.0, -1, cv2.LINE_AA, SHIFT)
            paint(img, glint * white, (250, 250, 250))
        lid = blank()
        cv2.polylines(lid, [h.fx(upper, dz=1.5).reshape(-1, 1, 2)], False, 1.0,
                      max(1, int(round(2.2 * i.liner * h.s))), cv2.LINE_AA, SHIFT)
        paint(img, lid, (35, 25, 22))
        crease = blank()
        cv2.polylines(crease, [h.fx(upper[2:-2] * [1, 1] + [0, -3.5 - 1.2 * open_], dz=1).reshape(-1, 1, 2)],
                      False, 0.45, 1, cv2.LINE_AA, SHIFT)
        paint(img, crease, skin * 0.5)
        if open_ > 0.08:
            low = blank()
            cv2.polylines(low, [h.fx(lower, dz=1).reshape(-1, 1, 2)], False, 0.5, 1, cv2.LINE_AA, SHIFT)
            paint(img, low, skin * 0.45)

    # --- nose: nostrils and wings ---
    for side in (-1, 1):
        nos = blank()
        c = h.proj([[side * i.nose_w * 0.42, i.nose_len - 0.5]], dz=5)[0]
        cv2.ellipse(nos, (int(c[0] * ONE), int(c[1] * ONE)), (int(2.6 * h.s * ONE), int(1.5 * h.s * ONE)),
                    h.roll + side * 15, 0, 360, 1.0, -1, cv2.LINE_AA, SHIFT)
        paint(img, nos, skin * 0.3)
        wing = blank()
        cv2.polylines(wing, [h.fx(ellipse_pts(side * i.nose_w * 0.75, i.nose_len - 3, 3.2, 3.5, 10,
                                               -math.pi / 2 if side > 0 else math.pi / 2,
                                               math.pi / 2 if side > 0 else 1.5 * math.pi), dz=4)
                              .reshape(-1, 1, 2)], False, 0.6, 1, cv2.LINE_AA, SHIFT)
        paint(img, wing, skin * 0.55)

    if i.full_beard > 0:
        fb = blank()
        jaw = outline[(outline[:, 1] > i.mouth_y - 8)]
        jaw = jaw[np.argsort(np.arctan2(jaw[:, 1] - 20, jaw[:, 0]))]
        fill(fb, h.fx(jaw, dz=1))
        fb = cv2.GaussianBlur(fb, (0, 0), 1.5 * h.s) * i.full_beard
        paint(img, fb, hair * 0.9)
    if i.mustache > 0:
        mu = blank()
        mpts = np.array([[-i.mouth_w - 1, i.mouth_y - 1], [-i.mouth_w * 0.5, i.mouth_y - i.lip_thick - 5],
                         [0, i.mouth_y - i.lip_thick - 6], [i.mouth_w * 0.5, i.mouth_y - i.lip_thick - 5],
                         [i.mouth_w + 1, i.mouth_y - 1], [0, i.mouth_y - i.lip_thick - 1.5]])
        fill(mu, h.fx(mpts, dz=4), i.mustache)
        paint(img, mu, hair * 0.9)

    # --- mouth: lips around an interior whose gap follows `mouth` ---
    _draw_mouth(img, h, i, pose.mouth, blank)

    if i.glasses:
        gl = blank()
        for side in (-1, 1):
            c = h.proj([[side * i.eye_dx, 0.5]], dz=6)[0]
            ax = (i.eye_w + 5.5) * h.s * (1 - 0.25 * side * h.sy)
            cv2.ellipse(gl, (int(c[0] * ONE), int(c[1] * ONE)), (int(ax * ONE), int((i.eye_h + 5) * h.s * ONE)),
                        h.roll, 0, 360, 1.0, max(1, int(round(1.8 * h.s))), cv2.LINE_AA, SHIFT)
            cv2.polylines(gl, [h.fx([[side * (i.eye_dx + i.eye_w + 5), -1], [side * (i.face_a - 1), -3]], dz=4)
                               .reshape(-1, 1, 2)], False, 1.0, 1, cv2.LINE_AA, SHIFT)
        cv2.polylines(gl, [h.fx([[-(i.eye_dx - i.eye_w - 5), -1], [0, -3], [i.eye_dx - i.eye_w - 5, -1]], dz=8)
                           .reshape(-1, 1, 2)], False, 1.0, 1, cv2.LINE_AA, SHIFT)
        paint(img, np.clip(gl, 0, 1), (30, 28, 30))



def _draw_mouth(img, h: _Head, i: Identity, mouth: float, blank) -> None:
    my, mw, lt = i.mouth_y, i.mouth_w, i.lip_thick
    gap = 1.0 + 11.0 * float(np.clip(mouth, 0.0, 1.0))  # inner-lip gap in template px
    w = mw * (1.0 - 0.08 * mouth)  # lips narrow a little as the jaw opens
    t = np.linspace(-1, 1, 21, dtype=np.float32)
    x = t * w
    bow = 0.9 * np.exp(-((np.abs(t) - 0.22) ** 2) / 0.02)  # cupid's bow peaks
    up_out = np.stack([x, my - gap * 0.3 - lt * (1 - t**2) ** 0.7 - bow], 1)
    up_in = np.stack([x, my - gap * 0.3 * (1 - t**2)], 1)
    lo_in = np.stack([x, my + gap * 0.7 * (1 - t**2) ** 0.8], 1)
    lo_out = np.stack([x, my + gap * 0.7 * (1 - t**2) ** 0.8 + lt * 1.25 * (1 - t**2) ** 0.6], 1)
    lips = blank()
    fill(lips, h.fx(np.concatenate([up_out, lo_out[::-1]]), dz=3))
    lip_col = np.array(i.lip, np.float32)
    paint(img, lips, lip_col)
    inner = blank()
    fill(inner, h.fx(np.concatenate([up_in, lo_in[::-1]]), dz=3))
    paint(img, inner, (45, 18, 22))
    if mouth > 0.25:  # upper teeth show once the mouth is open enough
        teeth = blank()
        tt = np.stack([x[4:-4], up_in[4:-4, 1] + gap * 0.22], 1)
        fill(teeth, h.fx(np.concatenate([up_in[4:-4], tt[::-1]]), dz=3))
        paint(img, teeth * inner, (215, 208, 198))
    line = blank()
    cv2.polylines(line, [h.fx(up_in, dz=3).reshape(-1, 1, 2)], False, 0.8, 1, cv2.LINE_AA, SHIFT)
    paint(img, line, (60, 25, 28))
    gloss = blank()
    fill(gloss, h.fx(ellipse_pts(0, my + gap * 0.7 + lt * 0.55, w * 0.35, lt * 0.25, 16), dz=3), 0.35)
    paint(img, cv2.GaussianBlur(gloss, (0, 0), 1.2), (255, 235, 235))
