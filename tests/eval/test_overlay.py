"""Overlays: world points land on the right pixels of every view rendered for people, each view
gets its own part of the canvas heat, and heat and markers show where they should."""

import numpy as np

from aim.data.preview import HEAT_COLOUR
from aim.eval.episode import observe
from aim.eval.observation import canvas_frames
from aim.eval.overlay import (
    TARGET_COLOUR,
    draw_targets,
    model_input_picture,
    project_to_view,
    resize_heat,
    slot_heat,
    view_pictures,
)

from .helpers import PointEnv, PointSuite, tiny_bundle

SIZE = 64  # pixels of the views rendered for people in these tests


def _env(bundle):
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    return env


def test_points_project_onto_the_view_pixels_of_their_calibration(rng):
    """PointEnv's cameras sit 2 units behind the origin looking along +z with focal f = W pixels
    and the principal point at the image centre, so (x, y, 0) lands on pixel (c + f x / 2, c + f y / 2)."""
    bundle = tiny_bundle(image_size=(8, 8))
    view = PointSuite().view(_env(bundle), SIZE, SIZE)
    x, y = rng.uniform(-0.3, 0.3, 2)
    camera = bundle.cameras[1]
    got = project_to_view(np.array([[x, y, 0.0]]), view.intrinsics[camera], view.extrinsics[camera], (SIZE, SIZE))
    centre = (SIZE - 1) / 2
    np.testing.assert_allclose(got, [(centre + SIZE * x / 2, centre + SIZE * y / 2)], atol=1e-9)


def test_points_behind_the_camera_or_off_the_image_are_left_out():
    bundle = tiny_bundle(image_size=(8, 8))
    view = PointSuite().view(_env(bundle), SIZE, SIZE)
    camera = bundle.cameras[0]
    points = np.array([[0.0, 0.0, -3.0], [5.0, 0.0, 0.0], [0.1, 0.0, 0.0]])
    got = project_to_view(points, view.intrinsics[camera], view.extrinsics[camera], (SIZE, SIZE))
    np.testing.assert_allclose(got, [((SIZE - 1) / 2 + SIZE * 0.05, (SIZE - 1) / 2)])


def test_each_view_gets_its_slot_of_the_canvas_heat(rng):
    """The tiny layout packs 8 x 8 views: the head at full size on top, the wrists halved below."""
    bundle = tiny_bundle(image_size=(8, 8))
    heat = rng.random((bundle.layout.height, bundle.layout.width))
    parts = slot_heat(bundle.layout, heat, bundle.image_size)
    head, left, right = bundle.layout.cameras
    np.testing.assert_array_equal(parts[head], heat[:8, :8])
    np.testing.assert_array_equal(parts[left], heat[8:12, :4])
    np.testing.assert_array_equal(parts[right], heat[8:12, 4:8])
    # Resizing keeps a constant heat constant and a left-to-right ramp increasing.
    np.testing.assert_allclose(resize_heat(np.full((4, 4), 0.3), (SIZE, SIZE)), 0.3, rtol=1e-6)
    ramp = resize_heat(np.tile(np.linspace(0, 1, 4), (4, 1)), (SIZE, SIZE))
    assert ramp.shape == (SIZE, SIZE) and np.all(np.diff(ramp[0]) >= 0) and ramp[0, -1] > ramp[0, 0]


def test_targets_are_a_ring_and_dots():
    image = np.full((SIZE, SIZE, 3), 128, np.uint8)
    drawn = draw_targets(image, np.array([[20.0, 30.0], [45.0, 10.0]]), radius=8)
    green = np.all(drawn == TARGET_COLOUR, axis=-1)
    assert green[30, 20 + 8] and green[30 - 8, 20] and not green[30, 20]  # a ring around the first target
    assert green[10, 45]  # a dot on the second
    assert np.array_equal(drawn[:, 56:], image[:, 56:]) and np.array_equal(draw_targets(image, np.zeros((0, 2)), 8), image)


def test_view_pictures_show_heat_and_targets_where_they_belong():
    bundle = tiny_bundle(image_size=(8, 8))
    view = PointSuite().view(_env(bundle), SIZE, SIZE)
    cameras = bundle.layout.cameras
    plain = view_pictures(view, cameras, None, None)
    assert all(np.array_equal(p, view.images[c]) for p, c in zip(plain, cameras))
    heat = np.zeros((bundle.layout.height, bundle.layout.width))
    heat[:8, :4] = 1.0  # the left half of the head view
    drawn = view_pictures(view, cameras, slot_heat(bundle.layout, heat, bundle.image_size), np.array([[0.0, 0.0, 0.0]]))
    head = drawn[0].astype(int) - plain[0].astype(int)
    towards_magenta = np.sign(HEAT_COLOUR - plain[0][:, :8])
    assert np.all(head[:, :8] * towards_magenta >= 0) and np.abs(head[:, :8]).sum() > 0
    np.testing.assert_array_equal(drawn[0][:, -8:], plain[0][:, -8:])  # no heat, no marker there
    # The target (the origin) is at the image centre of every view: a ring around it, and nothing
    # green elsewhere.
    radius = max(3, SIZE // 40)
    for picture in drawn:
        rows, cols = np.nonzero(np.all(picture == TARGET_COLOUR, axis=-1))
        distance = np.hypot(rows - (SIZE - 1) / 2, cols - (SIZE - 1) / 2)
        assert len(rows) and distance.max() <= radius + 1.5 and distance.min() >= radius / 2


def test_model_input_is_the_canvas_the_model_encodes():
    bundle = tiny_bundle(image_size=(8, 8))
    observation = observe(_env(bundle))
    canvas = canvas_frames(bundle.layout, [observation], bundle.image_size)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(model_input_picture(bundle.layout, observation, bundle.image_size),
                                  np.rint(canvas * 255).astype(np.uint8))
