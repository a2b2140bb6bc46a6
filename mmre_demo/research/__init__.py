"""What was tried and measured but does not ship, kept reachable (README.md here: what each was and the
model card row that measured it). The package reads only the shipped path; `mmre train` still offers these
by name, and a saved model that names one still loads (`model.relation.architecture_class`).

Names only here (no torch), so the configs and `mmre --help` read them cheaply.
"""

from __future__ import annotations

from typing import Literal, get_args

# relation architectures (mmre_demo/research/levitated.py)
ResearchArchitecture = Literal["levitated-markers"]
RESEARCH_ARCHITECTURES: tuple[str, ...] = get_args(ResearchArchitecture)
# what training does to the text backbone besides the shipped LoRA adapters (research/backbone_training.py)
ResearchBackboneTraining = Literal["full", "frozen"]
RESEARCH_BACKBONE_TRAININGS: tuple[str, ...] = get_args(ResearchBackboneTraining)
