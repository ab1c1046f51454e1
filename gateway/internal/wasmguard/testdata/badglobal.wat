;; badglobal: invalid — sets global 0 and the module has no global. The rewriter's countdown
;; would be global 0: the rewriter must refuse, not make the module valid.
(module
  (func (export "f") (loop $l (global.set 0 (i32.const 1000000)) (br $l))))
