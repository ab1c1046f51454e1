;; guesterr: tg_filter reports an error (the error flag) with the message "boom".
(module
  (memory (export "memory") 2)
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
  (data (i32.const 16) "boom")
  (func (export "tg_filter") (param i32) (result i64) (i64.const 0x0000001080000004))
)
