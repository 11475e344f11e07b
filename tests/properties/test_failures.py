import subprocess

import torch

from bertcheck.inputs.cases import Case
from bertcheck.properties.failures import PropertyFailure


def test_the_report_names_property_layer_activation_differences_input_and_the_command_to_rerun():
    failure = PropertyFailure(
        key="residual-identity",
        title="residual identity",
        where="layer 3",
        activation="blocks.3.ln1_in",
        expectation="ln1_in == attn_out + resid_pre, bit for bit (eval mode)",
        details=["Mismatched elements: 1 / 4 (25.0%)"],
        case=Case(("it's café\x00", "日本"), dtype=torch.float64),
        model_name="minilm",
    )
    assert str(failure) == (
        "Property 'residual identity' failed at layer 3, activation 'blocks.3.ln1_in'\n"
        "  expected: ln1_in == attn_out + resid_pre, bit for bit (eval mode)\n"
        "  Mismatched elements: 1 / 4 (25.0%)\n"
        "Input:\n"
        "  model: minilm   dtype: float64   device: cpu   batch: 2\n"
        "  sentences: [\"it's café\\x00\", '日本']\n"
        "Reproduce:\n"
        "  python -m bertcheck check residual-identity --model minilm --dtype float64 --device cpu "
        '--texts \'["it\'"\'"\'s caf\\u00e9\\u0000", "\\u65e5\\u672c"]\''
    )


def test_the_reproduce_command_survives_a_shell_with_every_character_hypothesis_draws():
    case = Case((("a 'quoted' $HOME `x`", "\x00\n\t😀"),))
    command = case.reproduce("minilm", "layernorm")
    texts = command.split(" --texts ", 1)[1]
    echoed = subprocess.run(["bash", "-c", f"printf %s {texts}"], capture_output=True, text=True, check=True).stdout
    assert Case.from_json(echoed) == Case(case.texts)
