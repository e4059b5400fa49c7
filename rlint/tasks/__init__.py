"""Tasks: problems, outcome verifiers and step rules."""

from __future__ import annotations

from rlint.tasks.base import Problem, Task, TaskInputError


def load_task(task_config) -> Task:
    """The task that ``params.yaml``'s ``task`` section describes."""
    if task_config.name == "arithmetic":
        from rlint.tasks.arithmetic import ArithmeticConfig
        from rlint.tasks.arithmetic_rl import ArithmeticRLTask

        return ArithmeticRLTask(
            ArithmeticConfig(
                seed=task_config.seed,
                min_steps=task_config.min_steps,
                max_steps=task_config.max_steps,
                operand_max=task_config.operand_max,
                value_max=task_config.value_max,
                operators=task_config.operators,
                heldout_share=task_config.heldout_share,
            )
        )
    from rlint.tasks.dataset import DatasetTask

    return DatasetTask(
        task_config.path,
        question_field=task_config.question_field,
        answer_field=task_config.answer_field,
        id_field=task_config.id_field,
        prompt_template=task_config.prompt_template,
        step_delimiter=task_config.step_delimiter,
        heldout_share=task_config.heldout_share,
        seed=task_config.seed,
        repair_template=task_config.repair_template,
        repair_chat=task_config.repair_chat,
    )


__all__ = ["Problem", "Task", "TaskInputError", "load_task"]
