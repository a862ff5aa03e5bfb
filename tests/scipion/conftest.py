"""Fixtures of the Scipion protocol tests (helpers in scipion_helpers.py)."""
import os

import pytest

from scipion_helpers import SIM, launch, new_project


@pytest.fixture(scope="session")
def sim_project():
    """A project holding one ProtFlexSimulate run (homogeneous, D=32, 1500 particles)."""
    from flexplugin.protocols import ProtFlexSimulate
    project = new_project("flexSimulation")
    prot = launch(project, ProtFlexSimulate, **SIM)
    return project, prot


@pytest.fixture
def sim(sim_project):
    """(project, simulate protocol), the current folder in that project."""
    os.chdir(sim_project[0].getPath())
    return sim_project
