package demo

import (
	"fmt"
	"math/rand/v2"
)

// The teams (sites) of the demo organisation.
const (
	teamRestaurant = "restaurante"
	teamContact    = "contacto"
)

type person struct {
	login, name, access, role, team string
}

// people are the members of Grupo La Brasa. The first is the owner.
var people = []person{
	{"admin", "Lucía Ramírez", "owner", "owner", ""},
	{"jorge", "Jorge Castaño", "manager", "gerente", ""},
	{"marta", "Marta Gómez", "supervisor", "supervisor", teamRestaurant},
	{"diego", "Diego Herrera", "supervisor", "supervisor", teamContact},
	{"camila", "Camila Rojas", "frontline", "mesero", teamRestaurant},
	{"andres", "Andrés Pérez", "frontline", "mesero", teamRestaurant},
	{"sofia", "Sofía Morales", "frontline", "mesero", teamRestaurant},
	{"paula", "Paula Jiménez", "frontline", "recepcion", teamRestaurant},
	{"valentina", "Valentina Ortiz", "frontline", "agente", teamContact},
	{"mateo", "Mateo Suárez", "frontline", "agente", teamContact},
	{"daniela", "Daniela Cárdenas", "frontline", "agente", teamContact},
	{"santiago", "Santiago Restrepo", "frontline", "agente", teamContact},
}

var firstNames = []string{
	"Ana María", "Carlos", "Juliana", "Felipe", "Natalia", "Sebastián", "Laura", "Alejandro",
	"Manuela", "Óscar", "Catalina", "Ricardo", "Isabel", "Hernán", "Verónica", "Gustavo",
	"Paola", "Tomás", "Mariana", "Esteban", "Diana", "Fernando", "Gloria", "Iván",
	"Luisa", "Mauricio", "Carolina", "Julián", "Adriana", "Kevin",
}

var lastNames = []string{
	"Vargas", "Mejía", "Salazar", "Londoño", "Ospina", "Cárdenas", "Quintero", "Arango",
	"Zapata", "Montoya", "Bedoya", "Giraldo", "Cifuentes", "Duque", "Rincón", "Patiño",
	"Valencia", "Forero", "Acosta", "Pineda", "Cortés", "Guzmán", "Barrera", "Navarro",
	"Chaparro", "Sierra", "Ríos", "Torres", "Lozano", "Rojas",
}

type customerSeed struct {
	ref, name, contact string
	tags               []string
	team               string
}

// customerSeeds returns the 60 known customers: 30 with a La Brasa loyalty
// card who eat at the restaurant and 30 who order by phone. A few are
// regulars (frecuente), a few VIP; one is a waiter's cousin (empleado), on
// whom the policy forbids any benefit.
// erasedSeed is the customer (in customerSeeds) whose data the demo erases:
// the first one of the contact centre, a frequent caller with a history.
const erasedSeed = 30

func customerSeeds() []customerSeed {
	var out []customerSeed
	for i := range 30 {
		c := customerSeed{
			ref:  fmt.Sprintf("LB-%04d", 1001+i),
			name: firstNames[i] + " " + lastNames[(i*7)%len(lastNames)],
			team: teamRestaurant,
			tags: []string{},
		}
		switch {
		case i < 4:
			c.tags = []string{"frecuente", "vip"}
		case i < 12:
			c.tags = []string{"frecuente"}
		case i == 29:
			c.name = "Kevin Rojas"
			c.tags = []string{"empleado"}
		}
		out = append(out, c)
	}
	for i := range 30 {
		phone := fmt.Sprintf("+57 3%02d %03d %04d", 10+(i*3)%40, 200+(i*37)%800, 1000+(i*613)%9000)
		c := customerSeed{
			ref:     phone,
			name:    firstNames[(i+11)%len(firstNames)] + " " + lastNames[(i*11+3)%len(lastNames)],
			contact: phone,
			team:    teamContact,
			tags:    []string{},
		}
		switch {
		case i < 2:
			c.tags = []string{"frecuente", "vip"}
		case i < 10:
			c.tags = []string{"frecuente"}
		}
		out = append(out, c)
	}
	return out
}

// who picks the customer of a scenario.
type who int

const (
	anyCustomer   who = iota // a known customer of the team, or a walk-in
	walkIn                   // a table or a new phone number
	regular                  // a customer tagged frecuente or vip
	staffRelative            // the customer tagged empleado
)

// scenario is one kind of moment of truth: who lives it, what they ask for,
// for how much (in pesos) and how the customer tends to react.
type scenario struct {
	team     string
	roles    []string // member roles that live it
	weight   float64  // relative frequency on day one
	trend    float64  // weight change by the last day: weight * (1 + trend*progress)
	from     float64  // first appears at this progress (0..1)
	until    float64  // last appears at this progress (0 means 1)
	action   string
	min, max int64 // amount range in pesos; 0 for non-monetary actions
	reasons  []string
	customer who
	context  func(r *rand.Rand, amount int64) map[string]any
	good     []string
	neutral  []string
	bad      []string
}

var genericGood = []string{
	"El cliente agradeció y dijo que volverá",
	"Me sentí orgullosa de resolverlo sin llamar a nadie",
	"Se fueron contentos y dejaron buena propina",
	"Nos felicitaron por la atención",
}

var genericBad = []string{
	"Aceptó, pero se fue molesto",
	"Dijo que no era suficiente",
}

var genericNeutral = []string{
	"Lo recibió sin mayor comentario",
}

func tableOrder(diners int) func(r *rand.Rand, amount int64) map[string]any {
	return func(r *rand.Rand, _ int64) map[string]any {
		perHead := (45000 + r.Int64N(25000)) / 100 * 100 // pesos
		return map[string]any{
			"order_total": float64(int64(diners) * perHead * 100), // centavos, as amounts
			"diners":      diners,
			"table":       1 + r.IntN(28),
		}
	}
}

func ctxMap(kv ...any) func(r *rand.Rand, amount int64) map[string]any {
	return func(*rand.Rand, int64) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
}

func remote(payment string) func(r *rand.Rand, amount int64) map[string]any {
	return func(r *rand.Rand, _ int64) map[string]any {
		channels := []string{"telefono", "telefono", "whatsapp", "chat"}
		m := map[string]any{"channel": channels[r.IntN(len(channels))], "order": fmt.Sprintf("D-%05d", 10000+r.IntN(90000))}
		if payment != "" {
			m["payment"] = payment
		} else if r.IntN(3) == 0 {
			m["payment"] = "transferencia"
		} else {
			m["payment"] = "tarjeta"
		}
		return m
	}
}

var waiters = []string{"mesero", "recepcion"}

// scenarios are the moments of truth of La Brasa, from the seeds of the
// field. Amounts are in pesos.
var scenarios = []scenario{
	// --- Restaurant ---
	{
		team: teamRestaurant, roles: waiters, weight: 3, trend: 0.3,
		action: "cortesia", min: 8000, max: 12000, customer: anyCustomer,
		reasons: []string{
			"Segunda canasta de pan para mesa de 6",
			"Otra canasta de pan con mantequilla: la mesa pidió otra ronda de cervezas",
			"Canasta de pan extra para mesa de cumpleaños",
		},
		context: tableOrder(6),
		good: []string{
			"Pidieron otra ronda de cervezas y dijeron que vuelven el viernes",
			"Preguntaron si vendemos el pan para llevar a la casa",
			"La mesa brindó por el pan de la casa",
			"El cliente dijo: 'así sí dan ganas de volver'",
		},
		neutral: genericNeutral,
		bad:     []string{"El pan llegó frío; se quejaron igual"},
	},
	{
		team: teamRestaurant, roles: waiters, weight: 2, trend: 0.2,
		action: "cortesia", min: 12000, max: 18000, customer: anyCustomer,
		reasons: []string{
			"Postre de cortesía por cumpleaños",
			"Brownie con helado para el niño que esperó la mesa",
			"Torta de la casa para celebrar un aniversario",
		},
		context: tableOrder(4),
		good: []string{
			"Cantamos el cumpleaños con la mesa de al lado; nos tomaron fotos",
			"La señora lloró de la emoción; prometió volver con toda la familia",
			"Publicaron una reseña de cinco estrellas esa misma noche",
		},
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamRestaurant, roles: waiters, weight: 2, trend: -0.3,
		action: "cortesia", min: 5000, max: 9000, customer: anyCustomer,
		reasons: []string{
			"Limonada de cortesía por demora de 40 minutos en cocina",
			"Bebida de cortesía: la mesa esperó la costilla más de la cuenta",
		},
		context: tableOrder(2),
		good:    append([]string{"Entendieron la demora y agradecieron el detalle"}, genericGood...),
		neutral: genericNeutral,
		bad:     []string{"La demora les dañó el almuerzo; la bebida no alcanzó"},
	},
	{
		// The cashier who suggested a fritada with the tuna, and Gustavo's
		// avocados: let the customer try, it comes back as a sale.
		team: teamRestaurant, roles: waiters, weight: 0.8, trend: 0.5,
		action: "cortesia", min: 4000, max: 6000, customer: anyCustomer,
		reasons: []string{
			"Probadita de la fritada de la casa para acompañar las costillas",
			"Muestra de la salsa de tamarindo para que la pruebe",
		},
		context: tableOrder(2),
		good: []string{
			"Terminó pidiendo la fritada completa y otra para llevar",
			"Se fue sonriendo de oreja a oreja; volvió con amigos",
			"Me sentí orgulloso: nadie me lo pidió, pero sabía que le iba a gustar",
		},
		neutral: genericNeutral,
	},
	{
		team: teamRestaurant, roles: waiters, weight: 0.4, trend: -0.7,
		action: "cortesia", min: 15000, max: 15000, customer: anyCustomer,
		reasons: []string{"Aguardiente de cortesía para el cumpleañero"},
		context: func(r *rand.Rand, a int64) map[string]any {
			m := tableOrder(5)(r, a)
			m["item"] = "licor"
			return m
		},
	},
	{
		team: teamRestaurant, roles: waiters, weight: 0.6,
		action: "cortesia", min: 30000, max: 60000, customer: walkIn,
		reasons: []string{
			"Entradas de cortesía para mesa de 10 que esperó una hora",
			"Picada de cortesía para grupo empresarial con reserva perdida",
		},
		context: tableOrder(10),
		good: []string{
			"El grupo reservó de nuevo para su fiesta de fin de año",
			"El organizador dijo que nunca lo habían atendido así",
		},
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamRestaurant, roles: waiters, weight: 0.4, trend: -0.6,
		action: "cortesia", min: 10000, max: 15000, customer: walkIn,
		reasons: []string{"Postre de cortesía a cliente que solo pidió un café"},
		context: ctxMap("order_total", 600000.0, "diners", 1),
	},
	{
		team: teamRestaurant, roles: waiters, weight: 2.5,
		action: "reposicion", min: 35000, max: 62000, customer: anyCustomer,
		reasons: []string{
			"Costillas pasadas de cocción: se repone el plato",
			"Plato equivocado: se repone la costilla BBQ",
			"Pelo en la ensalada: se repone sin costo",
			"La costilla llegó fría: se repone",
			"Garantía de la casa: si la costilla no le gusta, se cambia sin costo",
		},
		context: tableOrder(3),
		good: []string{
			"Se repuso en 8 minutos; el cliente dijo que así da gusto",
			"El cliente felicitó a la cocina por la segunda costilla",
			"Agradeció que no hubo que llamar al administrador",
			"Se llevó una libra de costillas para la casa",
		},
		neutral: genericNeutral,
		bad:     []string{"Se repuso, pero ya habían perdido el apetito"},
	},
	{
		team: teamRestaurant, roles: waiters, weight: 0.3,
		action: "reposicion", min: 70000, max: 90000, customer: anyCustomer,
		reasons: []string{"Se repone la picada familiar que llegó quemada"},
		context: tableOrder(6),
		good:    genericGood,
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamRestaurant, roles: waiters, weight: 1.5,
		action: "descuento", min: 8000, max: 20000, customer: anyCustomer,
		reasons: []string{
			"Descuento por error en la cuenta",
			"Descuento del 10 % por mesa sin aire acondicionado",
			"Descuento por plato que salió sin la salsa BBQ",
		},
		context: tableOrder(4),
		good:    genericGood,
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamRestaurant, roles: waiters, weight: 0.35,
		action: "descuento", min: 25000, max: 40000, customer: anyCustomer,
		reasons: []string{"Descuento por cobro doble en el datáfono"},
		context: tableOrder(4),
		good:    genericGood,
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamRestaurant, roles: waiters, weight: 1, trend: 0.4,
		action: "upgrade", min: 12000, max: 28000, customer: regular,
		reasons: []string{
			"Cambio a costillas premium sin costo para cliente frecuente",
			"Porción doble de papas criollas para cliente de todos los viernes",
		},
		context: tableOrder(2),
		good: []string{
			"Nos recomendó en el grupo de la oficina",
			"Dijo que por eso siempre vuelve",
		},
		neutral: genericNeutral,
	},
	{
		team: teamRestaurant, roles: []string{"mesero"}, weight: 0.4, trend: -0.5,
		action: "upgrade", min: 15000, max: 20000, customer: walkIn,
		reasons: []string{"Cambio a costillas premium sin costo para cliente nuevo"},
		context: tableOrder(2),
	},
	{
		team: teamRestaurant, roles: []string{"recepcion"}, weight: 1.2, trend: 0.3,
		action: "excepcion", customer: anyCustomer,
		reasons: []string{
			"Reserva para 14 personas fuera del horario habitual",
			"Mascota en la terraza",
			"Mesa junto a la ventana guardada 20 minutos más",
			"Dejar entrar el pastel de cumpleaños traído de casa",
		},
		context: ctxMap("area", "salon"),
		good: []string{
			"La familia celebró ahí sus 50 años de casados",
			"Subieron fotos de la terraza con el perro",
			"El cliente no lo podía creer",
		},
		neutral: genericNeutral,
	},
	{
		// The receptionist story, the other way round: once the policy gave
		// the host latitude, the stranded customer got to the staff ATM.
		team: teamRestaurant, roles: []string{"recepcion"}, weight: 0.25, from: 0.25,
		action: "excepcion", customer: walkIn,
		reasons: []string{"Dejar que el cliente use el cajero de empleados con su código de retiro"},
		context: ctxMap("area", "recepcion"),
		good: []string{
			"Pudo pagar el parqueadero; volvió a almorzar la semana siguiente",
			"Dijo que en ningún otro sitio lo habrían dejado pasar",
		},
	},
	{
		team: teamRestaurant, roles: []string{"mesero"}, weight: 0.5, trend: -0.6,
		action: "excepcion", customer: anyCustomer,
		reasons: []string{
			"Cambiar la guarnición por ensalada sin costo",
			"Servir media porción de costillas al precio proporcional",
		},
	},
	{
		team: teamRestaurant, roles: waiters, weight: 0.3, trend: -0.6,
		action: "reembolso", min: 40000, max: 55000, customer: anyCustomer,
		reasons: []string{"Cliente pide devolución en efectivo por plato frío"},
		context: ctxMap("payment", "efectivo", "channel", "mostrador"),
	},
	{
		team: teamRestaurant, roles: waiters, weight: 0.15, trend: -0.5,
		action: "cortesia", min: 12000, max: 12000, customer: staffRelative,
		reasons: []string{"Postre de cortesía para el primo de una compañera"},
		context: tableOrder(2),
	},

	// --- Contact centre ---
	{
		team: teamContact, roles: []string{"agente"}, weight: 3,
		action: "exoneracion", min: 4000, max: 9000, customer: anyCustomer,
		reasons: []string{
			"Exonerar el domicilio: el pedido llegó 50 minutos tarde",
			"No cobrar el recargo nocturno por error del sistema",
			"Exonerar el domicilio: el repartidor se perdió",
		},
		context: remote(""),
		good: []string{
			"No tuvo que insistir; colgó agradecida",
			"Pidió de nuevo esa misma semana",
		},
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 2,
		action: "reembolso", min: 18000, max: 45000, customer: anyCustomer,
		reasons: []string{
			"Reembolso por porción de costillas que faltó en el pedido",
			"Reembolso de la bebida que no llegó",
			"Reembolso parcial: llegaron las alitas frías",
		},
		context: remote(""),
		good: []string{
			"Se resolvió en la misma llamada, sin transferirla",
			"Dijo que era la primera vez que un call center le solucionaba algo a la primera",
		},
		neutral: genericNeutral,
		bad:     []string{"Quería el reembolso inmediato en su cuenta; tarda 3 días"},
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 0.6,
		action: "reembolso", min: 70000, max: 150000, customer: anyCustomer,
		reasons: []string{
			"Reembolso del pedido completo: llegó a otra dirección",
			"Reembolso de pedido familiar que nunca llegó",
		},
		context: remote(""),
		good:    genericGood,
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 2.2, trend: -0.2,
		action: "cortesia", min: 8000, max: 18000, customer: anyCustomer,
		reasons: []string{
			"Bono para el próximo pedido por demora de 45 minutos",
			"Postre de regalo en el próximo pedido por la espera",
		},
		context: func(r *rand.Rand, a int64) map[string]any {
			m := remote("")(r, a)
			m["delay_minutes"] = 30 + r.IntN(60)
			return m
		},
		good: []string{
			"Agradeció que no tuvo que pedirlo",
			"Usó el bono al día siguiente",
		},
		neutral: genericNeutral,
		bad:     []string{"Dijo que prefería que llegara a tiempo"},
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 0.3, trend: -0.5,
		action: "cortesia", min: 8000, max: 12000, customer: anyCustomer,
		reasons: []string{"Bono por demora de 20 minutos"},
		context: func(r *rand.Rand, a int64) map[string]any {
			m := remote("")(r, a)
			m["delay_minutes"] = 15 + r.IntN(10)
			return m
		},
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 1.5,
		action: "descuento", min: 5000, max: 15000, customer: anyCustomer,
		reasons: []string{
			"Descuento en el próximo pedido por empaque roto",
			"Descuento por salsa BBQ derramada en la bolsa",
		},
		context: remote(""),
		good:    genericGood,
		neutral: genericNeutral,
		bad:     genericBad,
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 0.8, trend: 0.3,
		action: "upgrade", min: 10000, max: 20000, customer: regular,
		reasons: []string{"Cambio a combo familiar sin costo para cliente frecuente"},
		context: remote(""),
		good:    []string{"Nos recomendó con sus vecinos", "Dijo que por eso pide siempre aquí"},
		neutral: genericNeutral,
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 0.3, trend: -0.6,
		action: "reembolso", min: 30000, max: 45000, customer: anyCustomer,
		reasons: []string{"Cliente pide que el domiciliario le devuelva el dinero en efectivo"},
		context: remote("efectivo"),
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 1, trend: 0.3,
		action: "excepcion", customer: anyCustomer,
		reasons: []string{
			"Cambiar la dirección de entrega con el pedido ya despachado",
			"Aceptar el cambio de un plato sin la factura",
			"Reenviar al supervisor la sugerencia del cliente sobre el datáfono",
		},
		context: remote(""),
		good: []string{
			"Le sorprendió que la sugerencia sí llegara a alguien",
			"Agradeció la flexibilidad",
		},
		neutral: genericNeutral,
	},

	// --- Supervisors and management ---
	{
		team: teamRestaurant, roles: []string{"supervisor"}, weight: 0.5,
		action: "cortesia", min: 60000, max: 180000, customer: anyCustomer,
		reasons: []string{
			"Cena de cortesía para mesa con queja formal",
			"Tabla de postres para grupo corporativo que esperó la reserva",
		},
		context: tableOrder(8),
		good:    []string{"Retiraron la queja y volvieron al mes", "El gerente del grupo nos escribió para agradecer"},
		neutral: genericNeutral,
	},
	{
		team: teamRestaurant, roles: []string{"supervisor"}, weight: 0.08,
		action: "cortesia", min: 220000, max: 300000, customer: walkIn,
		reasons: []string{"Invitar la cena completa a la familia que encontró un vidrio en el plato"},
		context: tableOrder(5),
	},
	{
		team: teamContact, roles: []string{"supervisor"}, weight: 0.5,
		action: "reembolso", min: 60000, max: 180000, customer: anyCustomer,
		reasons: []string{"Reembolso de pedido corporativo con 12 porciones frías"},
		context: remote("transferencia"),
		good:    []string{"La empresa volvió a pedir para su reunión del viernes"},
		neutral: genericNeutral,
	},
	{
		team: "", roles: []string{"gerente"}, weight: 0.3,
		action: "descuento", min: 300000, max: 800000, customer: anyCustomer,
		reasons: []string{"Descuento a evento empresarial con fallas en el servicio"},
		context: ctxMap("channel", "presencial", "payment", "transferencia"),
		good:    []string{"Contrataron de nuevo el evento de diciembre"},
		neutral: genericNeutral,
	},
}

// refusalScenario is a "no" given outside the decision flow: what the
// customer wanted was not something the policy even speaks about.
type refusalScenario struct {
	team   string
	roles  []string
	weight float64
	trend  float64
	until  float64
	wanted string
	kind   string
	left   []string
	note   string
}

var refusalScenarios = []refusalScenario{
	{
		team: teamRestaurant, roles: []string{"recepcion"}, weight: 0.35, trend: -1, until: 0.25,
		wanted: "Usar el cajero de empleados para sacar dinero (no tenía efectivo ni tarjeta)",
		kind:   "other_department", left: []string{"lost", "unhappy"},
		note: "El cajero es de los empleados; seguridad no lo deja pasar. Tenía código de retiro del banco.",
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 0.35, trend: -1, until: 0.35,
		wanted: "Enviar una sugerencia al banco: el datáfono del local rechaza tarjetas débito",
		kind:   "other_department", left: []string{"unhappy", "escalation"},
		note: "El manual no dice a quién reenviar una sugerencia.",
	},
	{
		team: teamRestaurant, roles: []string{"mesero"}, weight: 0.3, trend: -0.5,
		wanted: "Comprar pan de la casa para llevar",
		kind:   "no_rule", left: []string{"neutral", "accepted"},
		note: "No está en la carta. ¿Vendemos el pan?",
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 0.3, trend: -0.7,
		wanted: "Hablar con la cocina sobre el punto de las costillas",
		kind:   "other_department", left: []string{"unhappy", "neutral"},
		note: "No es de mi departamento: no hay forma de pasar la llamada a cocina.",
	},
	{
		team: teamContact, roles: []string{"agente"}, weight: 0.25, trend: -0.4,
		wanted: "Agendar la entrega a una hora exacta",
		kind:   "no_rule", left: []string{"neutral", "accepted"},
		note: "Solo tenemos franjas de una hora.",
	},
	{
		team: teamRestaurant, roles: []string{"mesero"}, weight: 0.15, trend: -0.5,
		wanted: "Dividir la cuenta en seis pagos con tarjeta",
		kind:   "other", left: []string{"accepted", "neutral"},
		note: "El datáfono solo permite cuatro transacciones seguidas.",
	},
}

var customerGood = []string{
	"¡Excelente atención! Volveremos.",
	"Gracias por el detalle, nos hicieron el día.",
	"Me solucionaron todo sin hacerme esperar.",
	"El mejor servicio de Bogotá.",
}

var customerBad = []string{
	"Bien el gesto, pero la comida llegó fría.",
	"Tuve que explicar el problema dos veces.",
}
