/**
 * GBNF for "any JSON object" (OpenAI `response_format: {"type": "json_object"}`, Ollama `format: "json"`).
 * Whitespace between tokens is limited to one optional space or a newline plus indentation, so a model
 * cannot fill its whole budget with blanks.
 */
export const JSON_OBJECT_GRAMMAR = String.raw`root ::= object
value ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] ) )* "\"" ws
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )? ws
ws ::= ( " " | "\n" [ \t]* )?
`;
