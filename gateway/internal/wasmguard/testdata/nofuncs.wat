;; nofuncs: no type, import, global or code section: the rewriter adds the first three.
(module (memory (export "memory") 1) (data (i32.const 0) "x"))
