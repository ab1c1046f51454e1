;; noexports: exports neither tg_filter nor tg_rpc.
(module
  (memory (export "memory") 2)
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
)
