"""The idea pipeline: the ideas.yaml file and its statuses (ideas_file) and the intake steps that
turn an idea into a new private repository enrolled in the fleet (bootstrap).
May import ``clone.config``, ``clone.fleet.repos_file``, ``clone.github``, ``clone.work``, ``clone.memory.docs``,
``clone.agents`` and ``clone.util``.
"""
