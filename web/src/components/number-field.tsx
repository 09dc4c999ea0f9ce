// A labelled numeric input that commits only valid numbers, so a half-typed "0." never reaches the request.
export interface NumberFieldProps {
  label: string;
  value: number;
  onChange: (value: number) => void;
  min?: number;
  max?: number;
  step?: number;
  testId?: string;
  title?: string | undefined;
  disabled?: boolean;
}

export function NumberField(props: NumberFieldProps) {
  return (
    <label class="field" title={props.title}>
      <span>{props.label}</span>
      <input
        type="number"
        value={props.value}
        min={props.min}
        max={props.max}
        step={props.step ?? 1}
        data-testid={props.testId}
        disabled={props.disabled}
        onInput={(e) => {
          const n = Number.parseFloat(e.currentTarget.value);
          if (Number.isFinite(n)) props.onChange(n);
        }}
      />
    </label>
  );
}
