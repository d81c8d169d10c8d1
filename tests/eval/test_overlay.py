"""Overlays: world points land on the right canvas pixels of every view; heat and markers show."""

import numpy as np

from aim.eval.episode import observe
from aim.eval.overlay import TARGET_COLOUR, project_to_canvas, rollout_picture

from .helpers import PointEnv, tiny_bundle


def test_points_project_into_each_views_slot(rng):
    """PointEnv's cameras sit 2 units behind the origin looking along +z with focal f = W pixels
    and the principal point at the image centre, so (x, y, 0) lands on view pixel
    (c + f x / 2, c + f y / 2); the head view is full size at the canvas top, the wrist views are
    halved side by side below it (pixel centres: canvas = offset + view / 2 - 1/4)."""
    bundle = tiny_bundle(image_size=(8, 8))
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    x, y = rng.uniform(-0.3, 0.3, 2)
    u, v = 3.5 + 8 * x / 2, 3.5 + 8 * y / 2
    got = project_to_canvas(np.array([[x, y, 0.0]]), observe(env), bundle.layout, bundle.image_size)
    want = [(u, v), (u / 2 - 0.25, 8 + v / 2 - 0.25), (4 + u / 2 - 0.25, 8 + v / 2 - 0.25)]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_points_behind_the_camera_or_off_the_image_are_left_out():
    bundle = tiny_bundle(image_size=(8, 8))
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    points = np.array([[0.0, 0.0, -3.0], [5.0, 0.0, 0.0]])
    assert project_to_canvas(points, observe(env), bundle.layout, bundle.image_size).shape == (0, 2)


def test_rollout_picture_shows_heat_and_targets():
    bundle = tiny_bundle(image_size=(8, 8))
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    observation = observe(env)
    plain = rollout_picture(bundle.layout, observation, bundle.image_size)
    heat = np.zeros((bundle.layout.height, bundle.layout.width))
    heat[8, 4] = 1.0
    drawn = rollout_picture(bundle.layout, observation, bundle.image_size, heat, np.array([[0.0, 0.0, 0.0]]))
    assert drawn[8, 4, 0] >= plain[8, 4, 0] and drawn[8, 4, 1] < plain[8, 4, 1]  # towards red
    # The target (the origin) projects to view pixel (3.5, 3.5): canvas (3.5, 3.5) in the head view,
    # (1.5, 9.5) and (5.5, 9.5) in the wrist views; markers are 3 x 3 squares around the rounded pixel.
    markers = np.zeros(heat.shape, bool)
    for u, v in ((4, 4), (2, 10), (6, 10)):
        markers[v - 1:v + 2, u - 1:u + 2] = True
    np.testing.assert_array_equal(drawn[markers], np.broadcast_to(TARGET_COLOUR, (markers.sum(), 3)))
    unchanged = ~markers
    unchanged[8, 4] = False
    np.testing.assert_array_equal(drawn[unchanged], plain[unchanged])
