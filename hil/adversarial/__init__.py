"""hil.adversarial: adversarial input sets as shared data, each case named, saying what is wrong with it
and what a correct peer must do, printable and generated on demand for the scenarios that use them
(:mod:`hil.adversarial.certificates`: server certificates that are valid but wrong in one way each;
:mod:`hil.adversarial.versions`: firmware versions a careless comparison gets wrong)."""
