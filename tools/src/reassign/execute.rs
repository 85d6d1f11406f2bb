//! `drkit reassign execute | verify | cancel | list`.
