;; imports_guard: a module that imports the guard's function itself is refused.
(module
  (import "teragate_guard" "tick" (func))
  (func (export "f")))
