"""All configuration, in one place: one small module per section, one convention.

Every section is a frozen dataclass whose fields carry their meaning and kind in metadata
(:func:`base.option`: the ``--help`` text; static or traced); ``validate()`` raises
:class:`ConfigError` naming the dotted field; derived sizes are properties.

=================  ===============================================  =================
module             holds                                            flags
=================  ===============================================  =================
``base``           ConfigError, checks, option, to/from_dict,       -
                   replace, static_fields / traced_fields
``env``            EnvConfig                                        ``--env.*``
``run``            RunConfig                                        ``--run.*``
``ppo``            PPOConfig (and TrainConfig, ground-truth PPO)    ``--ppo.*``
``reward``         RewardModelConfig (incl. the rating scale's      ``--reward.*``
                   bins and discount)
``teacher``        TeacherConfig (incl. rating_range, min_gap)      ``--teacher.*``
``acquisition``    AcquisitionConfig, EffectiveAcquisition          ``--acquisition.*``
``compat``         CompatConfig, check_compat                       ``--compat.*``
``experiment``     Config (the whole experiment), its cross         ``--name``,
                   checks, effective_acquisition, saved-config      ``--seed``
                   upgrade
=================  ===============================================  =================
"""

from active_rlhf_jax.config.acquisition import (
    AcquisitionConfig,
    EffectiveAcquisition,
    check_epig_ratings,
    check_information_units,
)
from active_rlhf_jax.config.base import (
    ConfigError,
    apply_hyper,
    field_help,
    from_dict,
    leaf_values,
    option,
    parse_value,
    prefix_errors,
    replace,
    static_fields,
    to_dict,
    traced_fields,
)
from active_rlhf_jax.config.compat import CompatConfig, check_compat
from active_rlhf_jax.config.env import EnvConfig
from active_rlhf_jax.config.experiment import (
    SECTIONS,
    Config,
    effective_acquisition,
    load_config_dict,
    upgrade_config_dict,
)
from active_rlhf_jax.config.ppo import PPOConfig, TrainConfig
from active_rlhf_jax.config.reward import RewardModelConfig
from active_rlhf_jax.config.run import RunConfig
from active_rlhf_jax.config.teacher import TeacherConfig

__all__ = [
    "SECTIONS",
    "AcquisitionConfig",
    "CompatConfig",
    "Config",
    "ConfigError",
    "EffectiveAcquisition",
    "EnvConfig",
    "PPOConfig",
    "RewardModelConfig",
    "RunConfig",
    "TeacherConfig",
    "TrainConfig",
    "check_compat",
    "check_epig_ratings",
    "check_information_units",
    "apply_hyper",
    "effective_acquisition",
    "field_help",
    "from_dict",
    "leaf_values",
    "load_config_dict",
    "option",
    "parse_value",
    "prefix_errors",
    "replace",
    "static_fields",
    "to_dict",
    "traced_fields",
    "upgrade_config_dict",
]
