"""papertide: a self-hostable research-paper discovery service.

Papers flow one way: sources -> papers -> store -> indexes -> rankers -> surfaces.
This package's modules follow that order; see DESIGN.md in the project's shared
folder and the README.
"""

__version__ = "0.1.0"
