;; badptr: tg_filter returns a result that points outside memory.
(module
  (memory (export "memory") 2)
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
  (func (export "tg_filter") (param i32) (result i64) (i64.const 0x7fff000000000010))
)
