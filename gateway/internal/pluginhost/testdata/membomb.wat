;; membomb: tg_filter grows memory until the host refuses, then traps as a Go guest does when out of memory.
(module
  (memory (export "memory") 2)
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
  (func (export "tg_filter") (param i32) (result i64)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)
)
