;; loop: tg_filter never returns (an infinite loop): the per-call deadline must stop it.
(module
  (memory (export "memory") 2)
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
  (func (export "tg_filter") (param i32) (result i64) (loop $l (br $l)) (i64.const 0))
)
