"""The free rule checks of the quality gate, on realistic pairs: each check catches its cases and
passes good answers (every good answer passes every check)."""

from __future__ import annotations

import pytest

from glan_dataset.quality import CHECKS, check_pairs

PHYSICS_Q = (
    "A 2.0 kg block slides down a frictionless incline of 30 degrees from rest. Using Newton's second law, "
    "find its acceleration and its speed after it has travelled 4.0 m along the incline."
)
PHYSICS_A = (
    "Along a frictionless incline only the component of gravity parallel to the surface accelerates the block, "
    "so a = g sin 30° = 9.8 m/s² × 0.5 = 4.9 m/s². The mass cancels: every block slides with the same "
    "acceleration.\n\nFrom v² = 2as, the speed after 4.0 m is v = √(2 × 4.9 × 4.0) ≈ 6.3 m/s."
)
HISTORY_Q = (
    "Explain two economic causes of the French Revolution and how they weakened the authority of Louis XVI before 1789."
)
HISTORY_A = (
    "First, the crown was close to bankruptcy: the wars of the eighteenth century, above all the support for the "
    "American Revolution, had left a debt whose interest consumed about half of royal spending. Second, the tax "
    "system exempted the nobility and clergy, so every attempt at reform (Calonne, then Brienne) had to be "
    "approved by the privileged orders, who refused. When the king called the Estates-General to raise money, he "
    "admitted that he could no longer govern the finances alone, and the Third Estate turned that admission "
    "into a claim to sovereignty."
)
CHEMISTRY_Q = "Balance the combustion of propane and state how many moles of oxygen one mole of propane needs."
CHEMISTRY_A = """Write the unbalanced equation, then balance C, H and finally O:

```
C3H8 + 5 O2 -> 3 CO2 + 4 H2O
```

- Carbon: 3 on each side
- Hydrogen: 8 on each side
- Oxygen: 10 on each side, so one mole of propane needs **5 mol of O2**"""
MATH_Q = "Show that the derivative of sin(x) at 0 equals 1 using the limit definition of the derivative."
MATH_A = (
    "By definition, f'(0) = lim_{h→0} (sin(h) − sin(0)) / h = lim_{h→0} sin(h)/h. The squeeze theorem with "
    "cos(h) ≤ sin(h)/h ≤ 1 near 0 gives the limit:\n\n$$\\lim_{h\\to 0} \\frac{\\sin h}{h} = 1$$"
)
# Greek symbols are letters too: a physics answer full of them is still English
GREEK_A = (
    "The angular frequency is ω = 2π/T, so with T = 0.5 s we get ω ≈ 12.6 rad/s; the phase shift Δφ = ωΔt "
    "is then 1.26 rad for Δt = 0.1 s, and the wavelength λ = v/f follows from the same relation."
)
GOOD = [
    (PHYSICS_Q, PHYSICS_A),
    (HISTORY_Q, HISTORY_A),
    (CHEMISTRY_Q, CHEMISTRY_A),
    (MATH_Q, MATH_A),
    (PHYSICS_Q, GREEK_A),
]

BAD: dict[str, list[tuple[str, str]]] = {
    "empty": [(PHYSICS_Q, "See above."), (HISTORY_Q, "N/A"), (MATH_Q, "   "), (CHEMISTRY_Q, "5 mol.")],
    "restates_question": [
        (HISTORY_Q, HISTORY_Q),
        (
            PHYSICS_Q,
            "Find the acceleration of a 2.0 kg block sliding down a frictionless incline of 30 degrees and its speed after 4.0 m.",
        ),
        (MATH_Q, "the derivative of sin(x) at 0 equals 1"),
    ],
    "refusal": [
        (PHYSICS_Q, "I'm sorry, but I can't help with that request."),
        (
            HISTORY_Q,
            "I am sorry, I am unable to provide an answer to this question as it involves historical interpretation.",
        ),
        (
            CHEMISTRY_Q,
            "As an AI language model, I cannot perform experiments, but the balanced equation is C3H8 + 5 O2 -> 3 CO2 + 4 H2O.",
        ),
        (MATH_Q, "I cannot assist with homework questions. Please ask your teacher for help with limits."),
        (
            HISTORY_Q,
            "As a large language model, I don't have personal opinions on the Revolution, but historians cite debt.",
        ),
    ],
    "truncated": [
        (
            PHYSICS_Q,
            "Along a frictionless incline only the component of gravity parallel to the surface accelerates the",
        ),
        (
            HISTORY_Q,
            "First, the crown was close to bankruptcy: the wars of the eighteenth century, above all the support for the American Revolution,",
        ),
        (CHEMISTRY_Q, "Write the unbalanced equation first:\n\n```\nC3H8 + 5 O2 ->"),
        (MATH_Q, "By definition, f'(0) = lim_{h→0} sin(h)/h. The squeeze theorem gives:"),
    ],
    "leaks_answer": [
        (PHYSICS_Q + " (Answer: 4.9 m/s² and 6.3 m/s)", PHYSICS_A),
        (CHEMISTRY_Q + " Hint: the answer is 5 mol of oxygen.", CHEMISTRY_A),
        (
            "Given that the speed after 4.0 m is v = √(2 × 4.9 × 4.0) ≈ 6.3 m/s, find the speed of a block on a frictionless 30 degree incline.",
            PHYSICS_A,
        ),
    ],
    "language": [
        (
            HISTORY_Q,
            "La crise financière de la monarchie est la première cause : les guerres du siècle ont laissé une dette "
            "énorme, et le roi ne peut pas lever de nouveaux impôts sans les privilégiés qui refusent.",
        ),
        (
            PHYSICS_Q,
            "Die Beschleunigung ist a = g sin 30° = 4,9 m/s², und die Geschwindigkeit nach 4,0 m ist nicht von der "
            "Masse abhängig, sie ist etwa 6,3 m/s.",
        ),
        (
            PHYSICS_Q,
            "沿光滑斜面下滑时，只有重力沿斜面的分量使物块加速，所以加速度为 4.9 米每二次方秒，速度约为 6.3 米每秒。",
        ),
        (
            "¿Cuál es la aceleración de un bloque de 2 kg en un plano inclinado de 30 grados sin fricción y por qué?",
            PHYSICS_A,
        ),
    ],
}


@pytest.mark.parametrize(("question", "answer"), GOOD)
def test_good_pairs_pass_every_check(question: str, answer: str) -> None:
    assert {name: check(question, answer) for name, check in CHECKS.items()} == dict.fromkeys(CHECKS, True)


@pytest.mark.parametrize(("name", "question", "answer"), [(n, q, a) for n, pairs in BAD.items() for q, a in pairs])
def test_each_check_catches_its_cases(name: str, question: str, answer: str) -> None:
    assert CHECKS[name](question, answer) is False


def test_every_check_is_exercised() -> None:
    assert set(BAD) == set(CHECKS)


def test_a_conversation_passes_a_check_only_if_every_turn_does() -> None:
    good = [{"role": "user", "content": PHYSICS_Q}, {"role": "assistant", "content": PHYSICS_A}]
    follow_up = "Why does the mass cancel out of the acceleration on the incline?"
    refused = [
        {"role": "user", "content": follow_up},
        {"role": "assistant", "content": "I'm sorry, but I can't help with that."},
    ]
    assert all(check_pairs(good).values())
    verdicts = check_pairs(good + refused)
    assert verdicts["refusal"] is False and verdicts["language"] is True
