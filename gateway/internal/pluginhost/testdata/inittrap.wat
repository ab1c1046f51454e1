;; inittrap: tg_init traps: the load is rejected.
(module
  (memory (export "memory") 2)
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_init") (param i32) (result i64) unreachable)
  (func (export "tg_filter") (param i32) (result i64) (i64.const 0))
)
