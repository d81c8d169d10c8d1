import pytest

from aim.demo import run_demo

from .toy import OUT, TOY


@pytest.fixture(scope="package")
def toy_demo(tmp_path_factory):
    """(working directory, first result) of the toy demo run once into the relative ``OUT``."""
    base = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)
        result = run_demo(OUT, TOY, progress=False)
    return base, result
